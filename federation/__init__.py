"""rats-federation: a k-of-n federation of RATS verifiers.

Fan Evidence out to n verifier backends, check every result under that backend's own trust
anchor (signature, nonce echo, freshness), apply a k-of-n quorum policy and emit one signed EAR
with provenance. A relying party checks it with :func:`verify_result`::

    async with Federation.from_config("config/federation.toml") as fed:
        result = await fed.appraise(Evidence.from_file("token.cose"))
    verified = verify_result(result.token, "federation-public.jwk", nonce=result.nonce)

Errors are :class:`federation.errors.Error` subclasses with a machine-readable ``reason``.
"""

from .ar4si import Tier, TrustVector
from .engine import Federation, Member, Session
from .errors import Error
from .evidence import Evidence
from .keys import SigningKey, TrustAnchor, load_signing_key, load_trust_anchor
from .quorum import Decision, QuorumPolicy
from .result import AppraisalResult, VerifiedResult, verify_result
from .votes import Outcome, Vote

__version__ = "0.1.0"

__all__ = [
    "AppraisalResult",
    "Decision",
    "Error",
    "Evidence",
    "Federation",
    "Member",
    "Outcome",
    "QuorumPolicy",
    "Session",
    "SigningKey",
    "Tier",
    "TrustAnchor",
    "TrustVector",
    "VerifiedResult",
    "Vote",
    "load_signing_key",
    "load_trust_anchor",
    "verify_result",
]
