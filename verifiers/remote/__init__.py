"""Remote verifier backends: verifiers reached over HTTP.

``http`` is the transport boundary (pooled aiohttp session, deadlines, TLS, size limits, error
mapping); ``breaker`` marks a failing service unhealthy and probes it later; ``veraison`` speaks
Veraison's challenge-response API (``kind = "veraison"``). Retries are not done here: the
federation engine retries whole attempts (see docs/remote-backends.md).
"""

from .breaker import CircuitBreaker, CircuitOpenError, State
from .http import HttpClient, Response, RetryAfterError, TLSError, TransportOptions
from .veraison import KeyPin, PinnedAnchor, VeraisonBackend

__all__ = [
    "CircuitBreaker",
    "CircuitOpenError",
    "HttpClient",
    "KeyPin",
    "PinnedAnchor",
    "Response",
    "RetryAfterError",
    "State",
    "TLSError",
    "TransportOptions",
    "VeraisonBackend",
]
