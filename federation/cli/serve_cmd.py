"""``ratsfed serve --config FILE``: run the federation (or one local appraiser) as an HTTP service.

The config's ``[server]`` section says which role and where; ``--host``/``--port`` override it.
The service runs until SIGINT or SIGTERM and then shuts down gracefully (exit 0). A config or
startup error (a bad key, the port taken, missing auth tokens) exits 2 with the reason.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses

from ..config import load_config
from ..errors import Error
from .output import fail

__all__ = ["add_parser"]


def _run(args: argparse.Namespace) -> int:
    from ..server import serve
    from ..server.logs import configure

    configure(args.log_level, args.log_format)
    try:
        config = load_config(args.config)
        overrides = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
        if overrides:
            config = dataclasses.replace(config, server=dataclasses.replace(config.server, **overrides))
        asyncio.run(serve(config, announce=lambda line: print(line, flush=True)))
    except Error as exc:
        return fail(exc, as_json=False)
    except KeyboardInterrupt:  # a second Ctrl-C during shutdown
        return 0
    return 0


def _port(value: str) -> int:
    if not value.isdigit() or int(value) > 65535:
        raise argparse.ArgumentTypeError("port must be 0..65535")
    return int(value)


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("serve", help="run the Veraison-compatible HTTP service (verifier or federator role)")
    p.add_argument("--config", required=True, help="config (TOML) with a [server] section")
    p.add_argument("--host", help="listen address (overrides server.host)")
    p.add_argument("--port", type=_port, help="listen port, 0 for any free one (overrides server.port)")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    p.add_argument("--log-format", default="json", choices=["json", "text"], help="structured log lines on stderr")
    p.set_defaults(func=_run)
