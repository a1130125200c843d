"""TDX quote checking and claim extraction shared by the four emulators.

Why here and why the repo's own parser: every vendor service verifies the quote before it signs
anything, so an emulator that signed whatever it was sent would let a client bug (sending the
wrong bytes, the wrong encoding, a quote bound to the wrong nonce) pass unnoticed. The checks
are the ones that need no collateral: the quote parses (:func:`parse_quote`), its PCK chain
validates at the emulator's clock to a configured root (the :class:`tdx_fakes.FakeIntel` root, or
Intel's pinned roots for real quotes: :func:`validate_chain`), and the quote and QE report
signatures hold (:func:`verify_quote`). TCB status is *not* evaluated (no collateral): each
emulator reports the TCB status its switch says.

The claim builders reproduce each vendor's naming for the same quote fields: the flat ``tdx_*``
claims of ITA v1 and MAA TdxVm (ITA's EAT profile page, MAA's TDX EAT profile), and Trustee's
parsed-quote tree (trustee ``deps/verifier/src/tdx/claims.rs``: ``quote.header``/``quote.body`` hex
fields, ``td_attributes`` booleans, ``report_data``, ``init_data`` = MRCONFIGID).
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from cryptography import x509

from federation.errors import Error
from verifiers.local.collateral.intel import PCK_LEAF, validate_chain
from verifiers.local.evidence.tdx import (
    BODY_TDX15,
    TD_ATTR_DEBUG,
    TD_ATTR_KL,
    TD_ATTR_PERFMON,
    TD_ATTR_PKS,
    TD_ATTR_SEPT_VE_DISABLE,
    TdReport,
    TdxQuote,
    parse_quote,
    verify_quote,
)

__all__ = ["QuoteRejected", "check_quote", "flat_tdx_claims", "trustee_tdx_claims"]


class QuoteRejected(Exception):
    """The quote does not parse, its PCK chain does not validate, or a signature fails.

    ``detail`` is the reason, for the vendor's error body.
    """

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


def check_quote(raw: bytes, roots: Sequence[x509.Certificate], at: datetime) -> TdxQuote:
    """Parse *raw* and verify it as a vendor service would before issuing a token.

    *roots* are the configured Intel root certificates (Intel's real roots are pinned anyway);
    *at* is the emulator's clock, against which the PCK chain's validity windows are checked.
    """
    try:
        quote = parse_quote(raw)
        chain = validate_chain(quote.pck_chain, at, leaf_name=PCK_LEAF, roots=tuple(roots))
        verify_quote(quote, chain.leaf_key)
    except Error as exc:
        raise QuoteRejected(exc.detail) from exc
    return quote


def _seam_svn(body: TdReport) -> int:
    """TEE_TCB_SVN bytes 0-1 little-endian: 3 for the ``03000500…`` of ITA's and MAA's samples."""
    return int(struct.unpack_from("<H", body.tee_tcb_svn, 0)[0])


def flat_tdx_claims(quote: TdxQuote, *, ita_raw: bytes | None = None) -> dict[str, Any]:
    """The ``tdx_*`` claims ITA v1 and MAA TdxVm put at the top level of their tokens.

    With *ita_raw* (the quote bytes as received) ITA's extras are added: ``tdx_is_debuggable`` and
    ``tdx_collateral`` (SHA-256 of the collateral used; here ``quotehash`` is real and the
    collateral hashes are of fixed labels, since the emulator uses no collateral).
    """
    b = quote.body
    attrs = b.td_attributes_value
    out: dict[str, Any] = {
        "tdx_tee_tcb_svn": b.tee_tcb_svn.hex(), "tdx_mrseam": b.mr_seam.hex(),
        "tdx_mrsignerseam": b.mr_signer_seam.hex(), "tdx_seamsvn": _seam_svn(b),
        "tdx_seam_attributes": b.seam_attributes.hex(),
        "tdx_td_attributes": b.td_attributes.hex(), "tdx_xfam": b.xfam.hex(), "tdx_mrtd": b.mr_td.hex(),
        "tdx_mrconfigid": b.mr_config_id.hex(), "tdx_mrowner": b.mr_owner.hex(),
        "tdx_mrownerconfig": b.mr_owner_config.hex(),
        **{f"tdx_rtmr{i}": r.hex() for i, r in enumerate(b.rtmrs)},
        "tdx_report_data": b.report_data.hex(),
        "tdx_td_attributes_debug": bool(attrs & TD_ATTR_DEBUG),
        "tdx_td_attributes_septve_disable": bool(attrs & TD_ATTR_SEPT_VE_DISABLE),
        "tdx_td_attributes_protection_keys": bool(attrs & TD_ATTR_PKS),
        "tdx_td_attributes_key_locker": bool(attrs & TD_ATTR_KL),
        "tdx_td_attributes_perfmon": bool(attrs & TD_ATTR_PERFMON),
    }
    if ita_raw is not None:
        out["tdx_is_debuggable"] = bool(attrs & TD_ATTR_DEBUG)
        out["tdx_collateral"] = {
            "quotehash": hashlib.sha256(ita_raw).hexdigest(),
            **{name: hashlib.sha256(name.encode()).hexdigest() for name in (
                "qeidcerthash", "qeidcrlhash", "qeidhash", "tcbinfocerthash", "tcbinfocrlhash", "tcbinfohash")},
        }
    return out


def trustee_tdx_claims(quote: TdxQuote, *, tcb_status: str, advisory_ids: Sequence[str],
                       tcb_date: str) -> dict[str, Any]:
    """Trustee's parsed TDX claims (``claims.rs generate_parsed_claim``) plus the DCAP outcome its
    verifier adds (``tcb_status``, ``advisory_ids``, ``tcb_date``, ``collateral_expiration_status``).

    ``report_data`` and ``init_data`` are not here: the EAR broker (``broker.rs transform_claims``)
    lifts them to the top of the annotated evidence, next to ``runtime_data_claims``.
    """
    b = quote.body
    header = {"version": struct.pack("<H", quote.version).hex(), "att_key_type": "0200",
              "tee_type": struct.pack("<I", quote.tee_type).hex(), "reserved": "00000000",
              "vendor_id": quote.qe_vendor_id.hex(), "user_data": quote.user_data.hex()}
    body: dict[str, str] = {
        "tcb_svn": b.tee_tcb_svn.hex(), "mr_seam": b.mr_seam.hex(), "mrsigner_seam": b.mr_signer_seam.hex(),
        "seam_attributes": b.seam_attributes.hex(), "td_attributes": b.td_attributes.hex(), "xfam": b.xfam.hex(),
        "mr_td": b.mr_td.hex(), "mr_config_id": b.mr_config_id.hex(), "mr_owner": b.mr_owner.hex(),
        "mr_owner_config": b.mr_owner_config.hex(),
        **{f"rtmr_{i}": r.hex() for i, r in enumerate(b.rtmrs)},
        "report_data": b.report_data.hex(),
    }
    quote_map: dict[str, Any] = {"header": header, "body": body}
    if quote.version == 5:
        quote_map["type"] = struct.pack("<H", quote.body_type).hex()
        quote_map["size"] = struct.pack("<I", 648 if quote.body_type == BODY_TDX15 else 584).hex()
        if b.tee_tcb_svn2 is not None and b.mr_service_td is not None:
            body["tee_tcb_svn2"] = b.tee_tcb_svn2.hex()
            body["mr_servicetd"] = b.mr_service_td.hex()
    attrs = b.td_attributes_value
    return {
        "quote": quote_map,
        "ccel": {},
        "td_attributes": {"debug": bool(attrs & TD_ATTR_DEBUG), "septve_disable": bool(attrs & TD_ATTR_SEPT_VE_DISABLE),
                          "protection_keys": bool(attrs & TD_ATTR_PKS), "key_locker": bool(attrs & TD_ATTR_KL),
                          "perfmon": bool(attrs & TD_ATTR_PERFMON)},
        "tcb_status": tcb_status,
        "tcb_date": tcb_date,
        "advisory_ids": list(advisory_ids),
        "collateral_expiration_status": "0",
    }
