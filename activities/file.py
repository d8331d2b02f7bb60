"""The `file` step: read, write, copy, delete or list files through fsspec (`file://`, `memory://`, `s3://` …).

Local paths are confined under ``PLAYBOOK_FILES_ROOT``: ``..`` is refused and a path that resolves
outside the root (through a symlink) too. Outputs are `file` values — URI, size and sha256 — never
bytes in workflow history; a read adds the text itself when it is UTF-8 and at most 1 MiB.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Literal
from uuid import UUID

import fsspec
from fsspec.implementations.local import LocalFileSystem
from fsspec.spec import AbstractFileSystem
from pydantic import BaseModel, ConfigDict, Field, model_validator

from model.execution import StepRequest
from store import Store

from .errors import fail
from .outside import already_done
from .steps import step_audit, step_handler, step_key

MAX_CONTENT = 1024 * 1024
"""A read returns the text itself up to this size; larger files give their URI, size and sha256 only."""
MAX_LISTED = 1000
CHUNK = 1024 * 1024
LOCAL = (None, "file", "local")


class FileWith(BaseModel):
    model_config = ConfigDict(extra="forbid")

    operation: Literal["read", "write", "copy", "delete", "list"]
    url: str = Field(min_length=1, description="An fsspec URL; local paths are relative to PLAYBOOK_FILES_ROOT.")
    content: str | None = Field(default=None, description="The text to write (write).")
    to: str | None = Field(default=None, description="Where to copy to (copy).")

    @model_validator(mode="after")
    def _needs(self) -> FileWith:
        if self.operation == "write" and self.content is None:
            raise ValueError("content: a write needs content")
        if self.operation == "copy" and not self.to:
            raise ValueError("to: a copy needs to (the destination URL)")
        return self


@dataclass(frozen=True)
class Located:
    """A file system and a path on it, with the URI the step reports."""

    fs: AbstractFileSystem
    path: str
    uri: str


def locate(url: str, field: str = "with.url") -> Located:
    """Where a URL points, refusing chained URLs, `..` and local paths outside PLAYBOOK_FILES_ROOT."""
    if "::" in url:
        raise fail("PathRefused", f"{field}: chained URLs (::) are not allowed")
    protocol, path = fsspec.core.split_protocol(url)
    if ".." in PurePosixPath(path).parts:
        raise fail("PathRefused", f"{field}: '..' is not allowed in {url!r}")
    if protocol in LOCAL:
        root_setting = os.environ.get("PLAYBOOK_FILES_ROOT")
        if not root_setting:
            raise fail("PathRefused", f"{field}: local files need PLAYBOOK_FILES_ROOT on the worker")
        root = Path(root_setting).resolve()
        local = Path(path)
        target = (local if local.is_absolute() else root / local).resolve()
        if not target.is_relative_to(root):
            raise fail("PathRefused", f"{field}: {url!r} is outside PLAYBOOK_FILES_ROOT")
        local_fs = LocalFileSystem()
        return Located(fs=local_fs, path=str(target), uri=local_fs.unstrip_protocol(str(target)))
    try:
        fs = fsspec.filesystem(protocol)
    except (ValueError, ImportError) as exc:
        raise fail("PathRefused", f"{field}: {exc}") from None
    stripped = fs._strip_protocol(url)
    return Located(fs=fs, path=stripped, uri=fs.unstrip_protocol(stripped))


def _digest(place: Located) -> tuple[int, str, bytes]:
    """Size, sha256 and (up to MAX_CONTENT + 1 bytes) the head of a file, read in chunks."""
    sha, size, head = hashlib.sha256(), 0, bytearray()
    with place.fs.open(place.path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            sha.update(chunk)
            size += len(chunk)
            if len(head) <= MAX_CONTENT:
                head += chunk[: MAX_CONTENT + 1 - len(head)]
    return size, sha.hexdigest(), bytes(head)


def _value(place: Located) -> dict[str, Any]:
    size, sha, _ = _digest(place)
    return {"uri": place.uri, "size": size, "sha256": sha}


def _read(place: Located) -> dict[str, Any]:
    size, sha, head = _digest(place)
    content = None
    if size <= MAX_CONTENT:
        with contextlib.suppress(UnicodeDecodeError):  # binary: its URI, size and hash only
            content = head.decode("utf-8")
    return {"uri": place.uri, "size": size, "sha256": sha, "content": content}


def _write(place: Located, content: str) -> dict[str, Any]:
    data = content.encode("utf-8")
    place.fs.makedirs(place.fs._parent(place.path), exist_ok=True)
    place.fs.pipe_file(place.path, data)
    return {"uri": place.uri, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def _copy(source: Located, target: Located) -> dict[str, Any]:
    target.fs.makedirs(target.fs._parent(target.path), exist_ok=True)
    with source.fs.open(source.path, "rb") as src, target.fs.open(target.path, "wb") as dst:
        while chunk := src.read(CHUNK):
            dst.write(chunk)
    return _value(target)


def _list(place: Located) -> dict[str, Any]:
    entries = sorted(place.fs.ls(place.path, detail=True), key=lambda e: str(e["name"]))
    files = [
        {"uri": place.fs.unstrip_protocol(e["name"]), "size": e.get("size"), "type": e.get("type")}
        for e in entries[:MAX_LISTED]
    ]
    return {"uri": place.uri, "files": files, "count": len(entries)}


def operate(spec: FileWith) -> dict[str, Any]:
    """The operation, synchronously (run in a thread: fsspec's common API is blocking)."""
    place = locate(spec.url)
    try:
        match spec.operation:
            case "read":
                return _read(place)
            case "write":
                return _write(place, spec.content or "")
            case "copy":
                return _copy(place, locate(spec.to or "", "with.to"))
            case "delete":
                place.fs.rm(place.path)
                return {"uri": place.uri, "deleted": True}
            case "list":
                return _list(place)
    except FileNotFoundError:
        raise fail("FileNotFound", f"with.url: no such file or folder {place.uri}") from None
    except (IsADirectoryError, NotADirectoryError, PermissionError, FileExistsError) as exc:
        raise fail("FileRefused", f"with.url: {place.uri}: {exc.strerror or exc}") from None
    raise AssertionError(spec.operation)


@step_handler("file", FileWith)
async def file(store: Store, req: StepRequest) -> dict[str, Any]:
    spec = FileWith.model_validate(req.with_)
    if spec.operation in ("write", "copy", "delete") and (done := await already_done(store, req)) is not None:
        return done
    output = await asyncio.to_thread(operate, spec)
    await store.record_step(UUID(req.organization_uuid), step_key(req), step_audit(req, output=output))
    return output
