"""Temporal's codec-server protocol (SPEC §7): the Web UI posts payloads here to read them decoded.

`router` is what the gateway mounts; `app()` serves it alone (what `playbook dev` runs until the gateway
serves it). CORS admits only PLAYBOOK_CODEC_CORS_ORIGIN; with PLAYBOOK_CODEC_REQUIRE_TOKEN set, a request
must carry ``Authorization: Bearer <that token>``.
"""

from __future__ import annotations

import hmac
import os
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Header, HTTPException, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload, Payloads
from temporalio.converter import PayloadCodec

from config.codec import EncryptionCodec, keys_from_env

CORS_ENV = "PLAYBOOK_CODEC_CORS_ORIGIN"
TOKEN_ENV = "PLAYBOOK_CODEC_REQUIRE_TOKEN"


def _codec() -> PayloadCodec:
    keys = keys_from_env()
    if not keys:
        raise HTTPException(503, "no PLAYBOOK_ENCRYPTION_KEYS configured: payloads are not encrypted")
    return EncryptionCodec(keys)


def _authorized(authorization: Annotated[str | None, Header()] = None) -> None:
    token = os.environ.get(TOKEN_ENV, "")
    if token and not hmac.compare_digest(authorization or "", f"Bearer {token}"):
        raise HTTPException(401, "a bearer token is required (Authorization: Bearer ...)")


router = APIRouter(prefix="/codec", tags=["codec"], dependencies=[Depends(_authorized)])


async def _convert(request: Request, codec: PayloadCodec, encode: bool) -> dict[str, Any]:
    try:
        payloads = json_format.Parse(await request.body(), Payloads())
    except json_format.ParseError as exc:
        raise HTTPException(400, f"body: not {{\"payloads\": [...]}} ({exc})") from None
    given: list[Payload] = list(payloads.payloads)
    try:
        out = await (codec.encode(given) if encode else codec.decode(given))
    except ValueError as exc:
        raise HTTPException(400, str(exc)) from None
    result: dict[str, Any] = json_format.MessageToDict(Payloads(payloads=out))
    return result


@router.post("/encode")
async def encode(request: Request, codec: Annotated[PayloadCodec, Depends(_codec)]) -> dict[str, Any]:
    """Encrypt payloads (the Web UI uses it to send signals and queries typed there)."""
    return await _convert(request, codec, encode=True)


@router.post("/decode")
async def decode(request: Request, codec: Annotated[PayloadCodec, Depends(_codec)]) -> dict[str, Any]:
    """Decrypt payloads for display; payloads that were never encrypted come back as they are."""
    return await _convert(request, codec, encode=False)


def cors(app: FastAPI) -> None:
    """CORS for the Web UI's origin only (none configured: no cross-origin caller is admitted)."""
    origin = os.environ.get(CORS_ENV, "").strip()
    if origin:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=[origin],
            allow_methods=["POST"],
            allow_headers=["content-type", "x-namespace", "authorization"],
            allow_credentials=True,
        )


def app() -> FastAPI:
    """The codec server on its own, with problem+json errors."""
    server = FastAPI(title="Playbook codec server")
    server.include_router(router)
    cors(server)

    @server.exception_handler(HTTPException)
    async def problem(request: Request, exc: HTTPException) -> JSONResponse:
        body = {"type": "about:blank", "title": str(exc.detail), "status": exc.status_code}
        return JSONResponse(body, status_code=exc.status_code, media_type="application/problem+json")

    return server
