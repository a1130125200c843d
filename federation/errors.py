"""Typed errors, each with a machine-readable ``reason``.

Why a tree: callers need to tell *who is at fault* (the untrusted input, the network, the
operator's config, the caller) and a program needs a stable code, not a message.
"Couldn't verify" is never "verified false": both raise, and the reason says which.

    Error                                   reason
    ├── ConfigError                          config          operator's config is invalid
    ├── UsageError                           usage           caller misused the API / CLI
    ├── MalformedError                       malformed       untrusted bytes do not parse
    ├── VerificationError                    (abstract)      a check on untrusted input failed
    │   ├── BadSignatureError                bad-signature
    │   ├── UntrustedKeyError                untrusted-key   no configured anchor signed it
    │   ├── AlgorithmError                   bad-algorithm   algorithm not allowed for the key
    │   ├── NonceMismatchError               nonce-mismatch
    │   ├── StaleError                       stale           expired, not yet valid, too old
    │   ├── ReplayError                      replay          nonce already used within the replay window
    │   └── PolicyError                      policy          content contradicts a rule (e.g. quorum)
    └── BackendError                         (abstract)      a verifier could not be asked
        ├── BackendTimeoutError              timeout
        ├── BackendUnreachableError          unreachable
        └── BackendHTTPError                 http-error
"""

from __future__ import annotations

__all__ = [
    "AlgorithmError",
    "BackendError",
    "BackendHTTPError",
    "BackendTimeoutError",
    "BackendUnreachableError",
    "BadSignatureError",
    "ConfigError",
    "Error",
    "MalformedError",
    "NonceMismatchError",
    "PolicyError",
    "ReplayError",
    "StaleError",
    "UntrustedKeyError",
    "UsageError",
    "VerificationError",
]


class Error(Exception):
    """Root of every error this package raises on purpose."""

    reason: str = "error"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail

    def __str__(self) -> str:
        return f"{self.reason}: {self.detail}"


class ConfigError(Error):
    """The operator's configuration is invalid; raised at load, naming the key and file."""

    reason = "config"

    def __init__(self, detail: str, *, key: str | None = None, file: str | None = None) -> None:
        where = ":".join(x for x in (file, key) if x)
        super().__init__(f"{where}: {detail}" if where else detail)
        self.key = key
        self.file = file


class UsageError(Error):
    """The caller misused the API or the CLI (not the fault of any untrusted input)."""

    reason = "usage"


class MalformedError(Error):
    """Untrusted bytes do not parse, exceed a bound, or violate the format."""

    reason = "malformed"


class VerificationError(Error):
    """A check on untrusted input failed; the subclass says which."""

    reason = "verification"


class BadSignatureError(VerificationError):
    reason = "bad-signature"


class UntrustedKeyError(VerificationError):
    reason = "untrusted-key"


class AlgorithmError(VerificationError):
    reason = "bad-algorithm"


class NonceMismatchError(VerificationError):
    reason = "nonce-mismatch"


class StaleError(VerificationError):
    reason = "stale"


class ReplayError(VerificationError):
    """A nonce was offered for a second appraisal while the replay cache still remembers it."""

    reason = "replay"


class PolicyError(VerificationError):
    reason = "policy"


class BackendError(Error):
    """A verifier backend could not be asked or did not answer usefully."""

    reason = "error"


class BackendTimeoutError(BackendError):
    reason = "timeout"


class BackendUnreachableError(BackendError):
    reason = "unreachable"


class BackendHTTPError(BackendError):
    reason = "http-error"

    def __init__(self, detail: str, *, status: int) -> None:
        super().__init__(detail)
        self.status = status
