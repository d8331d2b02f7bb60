"""`playbook serve`: the gateway on uvicorn. The `playbook` command starts here, above `starter`'s commands."""

from __future__ import annotations

import argparse

from config import Settings
from starter.cli import main as starter_main
from starter.plumbing import Add, UserError

from .settings import GatewaySettings


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from .app import create_app

    try:
        gateway = GatewaySettings.from_env(**({"addr": args.addr} if args.addr else {}))
        app = create_app(settings, gateway)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    uvicorn.run(app, host=gateway.host, port=gateway.port, log_level=args.log_level, proxy_headers=True)
    return 0


def register(add: Add) -> None:
    p = add("serve", cmd_serve, "run the HTTP gateway (PLAYBOOK_HTTP_ADDR, JWT settings from the environment)")
    p.add_argument("--addr", help="host:port to listen on (default PLAYBOOK_HTTP_ADDR or 127.0.0.1:8088)")
    p.add_argument("--log-level", default="info", choices=("critical", "error", "warning", "info", "debug"))


def main(argv: list[str] | None = None) -> None:
    starter_main(argv, extra=(register,))
