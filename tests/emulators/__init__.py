"""Protocol-faithful emulators of the vendor verification services, for the remote-backend tests.

Each emulator is a class holding its state (keys, issued nonces/challenges/tokens, switches) with
``app() -> aiohttp.web.Application``; :func:`running` serves one on 127.0.0.1 and yields its base
URL, which is what a client backend is configured with. Each module's docstring names the public
sources its contract rests on (the vendor's clients, API definitions or source) and lists what it
reproduces, its switches, its trust anchor and where it deviates.

    async with running(ItaEmulator(intel_roots=[intel.root]).app()) as url:
        ...  # point the ITA backend at url (API and portal), pin emulator.jwks()

Quotes come from :mod:`tdx_fakes` (``td_quote(intel, report_data, debug=...)``); every emulator
verifies them against the configured ``intel_roots`` before it signs anything. Each vendor's
REPORT_DATA rule is exported for attesters in tests: :func:`nonce_report_data` (ITA),
:func:`runtime_report_data` (MAA TdxVm), :func:`structured_report_data` (Trustee ``structured``;
Trustee ``raw`` runtime data is compared unhashed, zero-padded). Google binds nothing into the
quote (eat_nonce only).
"""

from __future__ import annotations

import ssl as _ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp import web
from aiohttp.test_utils import TestServer

from .common import Emulator
from .google import GoogleEmulator, GoogleKeys
from .ita import ItaEmulator, ItaKeys, nonce_report_data
from .maa import MaaEmulator, runtime_report_data
from .trustee import TrusteeEmulator, structured_report_data

__all__ = ["Emulator", "GoogleEmulator", "GoogleKeys", "ItaEmulator", "ItaKeys", "MaaEmulator", "TrusteeEmulator",
           "nonce_report_data", "running", "runtime_report_data", "structured_report_data"]


@asynccontextmanager
async def running(app: web.Application, *, ssl: _ssl.SSLContext | None = None) -> AsyncIterator[str]:
    """Serve *app* on 127.0.0.1 (a free port) and yield its base URL, ``http://127.0.0.1:<port>``
    (``https`` with *ssl*); the server is closed on exit. No other interface is ever bound."""
    server = TestServer(app, host="127.0.0.1")
    await server.start_server(ssl=ssl)
    try:
        yield f"{'https' if ssl else 'http'}://127.0.0.1:{server.port}"
    finally:
        await server.close()
