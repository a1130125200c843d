"""Evidence parsers of the local appraiser: bytes in, validated claims out (sans-IO).

Each module is a pure function of its input: no file, network or clock access (the time of an
appraisal is an argument), bounded input sizes and nesting, and one error type per fault
(:class:`~federation.errors.MalformedError` for bad input, a
:class:`~federation.errors.VerificationError` for a failed signature or binding).

* :mod:`.psa` - PSA attestation tokens (P1, P2, RFC 9783);
* :mod:`.cca` - Arm CCA platform + realm tokens (tag 399 and tag-907 CMW collections);
* :mod:`.eat` - generic EAT evidence (CWT and JWT) with measured components, in our profile;
* :mod:`.tdx` - Intel TDX quotes (v4, v5);
* :mod:`.sevsnp` - AMD SEV-SNP attestation reports (bare, configfs-tsm CBOR/JSON, our CMW
  collection);
* :mod:`.cmw` - RATS Conceptual Message Wrappers (records, tags, collections; CBOR and JSON).

Importing this package registers one media-type sniffer per format with
:func:`federation.evidence.register_sniffer`, most specific first (a PSA token is also an EAT;
a CCA token's inner collection is also a CMW; the SEV-SNP evidence collection is also a CMW, so
its sniffer comes before the generic CMW one).
"""

from __future__ import annotations

from federation.evidence import register_sniffer

from . import cca, cmw, eat, psa, sevsnp, tdx
from .cca import CcaPlatformClaims, CcaRealmClaims, CcaToken, decode_cca, encode_cca, verify_cca
from .eat import EatClaims, EatToken, decode_eat, encode_eat, verify_eat
from .measured_component import MeasuredComponent, Version
from .psa import PsaClaims, SwComponent, decode_psa, encode_psa, verify_psa

__all__ = [
    "SNIFFERS",
    "CcaPlatformClaims",
    "CcaRealmClaims",
    "CcaToken",
    "EatClaims",
    "EatToken",
    "MeasuredComponent",
    "PsaClaims",
    "SwComponent",
    "Version",
    "cca",
    "cmw",
    "decode_cca",
    "decode_eat",
    "decode_psa",
    "eat",
    "encode_cca",
    "encode_eat",
    "encode_psa",
    "psa",
    "sevsnp",
    "tdx",
    "verify_cca",
    "verify_eat",
    "verify_psa",
]

# Order matters: the first sniffer that recognises the bytes names their media type.
SNIFFERS = (psa.sniff, cca.sniff, eat.sniff, tdx.sniff, sevsnp.sniff, cmw.sniff)
for _sniffer in SNIFFERS:
    register_sniffer(_sniffer)
