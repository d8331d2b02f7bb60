"""RFC 9457 problem details: every error the gateway returns is `application/problem+json`."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException
from temporalio.service import RPCError, RPCStatusCode

MEDIA_TYPE = "application/problem+json"
_RPC_STATUS = {RPCStatusCode.NOT_FOUND: 404, RPCStatusCode.INVALID_ARGUMENT: 422}
"""Temporal's answers that are the caller's doing; any other is the service being unavailable (503)."""


class FieldProblem(BaseModel):
    field: str = Field(description="The bad field, dotted (`initial_data.email`).")
    message: str = Field(description="What rule it breaks.")


class ProblemBody(BaseModel):
    type: str = Field(default="about:blank", description="A URI naming the kind of problem.")
    title: str
    status: int
    detail: str | None = None
    errors: list[FieldProblem] = Field(default_factory=list)


class Problem(Exception):
    """Raise anywhere in a route: the client receives this problem."""

    def __init__(self, status: int, detail: str, *, errors: list[FieldProblem] | None = None,
                 headers: dict[str, str] | None = None) -> None:  # fmt: skip
        super().__init__(detail)
        self.status, self.detail, self.errors, self.headers = status, detail, errors or [], headers


def problem_response(status: int, detail: str | None, errors: list[FieldProblem] | None = None,
                     headers: dict[str, str] | None = None) -> JSONResponse:  # fmt: skip
    title = HTTPStatus(status).phrase
    slug = title.lower().replace(" ", "-").replace("'", "")
    body = ProblemBody(type=f"https://playbooks.dev/problems/{slug}", title=title, status=status, detail=detail,
                       errors=errors or [])  # fmt: skip
    return JSONResponse(body.model_dump(), status_code=status, media_type=MEDIA_TYPE, headers=headers)


def _field(loc: tuple[Any, ...]) -> str:
    # the request part (body, query, path, header) is where, not what: drop it
    parts = [str(p) for p in loc[1:]] if loc and loc[0] in ("body", "query", "path", "header") else list(map(str, loc))
    return ".".join(parts) or "body"


def install(app: FastAPI) -> None:
    """Turn every error (ours, FastAPI's validation, Starlette's 404/405) into a problem."""

    async def on_problem(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, Problem)
        return problem_response(exc.status, exc.detail, exc.errors, exc.headers)

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = [FieldProblem(field=_field(tuple(e["loc"])), message=str(e["msg"])) for e in exc.errors()]
        return problem_response(422, "; ".join(f"{e.field}: {e.message}" for e in errors), errors)

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HTTPException)
        return problem_response(exc.status_code, str(exc.detail), headers=dict(exc.headers or {}))

    async def on_temporal(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RPCError)
        status = _RPC_STATUS.get(exc.status, 503)
        return problem_response(status, f"Temporal: {exc.message}")

    app.add_exception_handler(RPCError, on_temporal)
    app.add_exception_handler(Problem, on_problem)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(HTTPException, on_http)


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI documentation of the problems a route may answer with (every route may answer 422 and 503)."""
    schema = {"$ref": "#/components/schemas/ProblemBody"}
    return {
        s: {"model": ProblemBody, "description": HTTPStatus(s).phrase, "content": {MEDIA_TYPE: {"schema": schema}}}
        for s in sorted({*statuses, 422, 503})
    }
