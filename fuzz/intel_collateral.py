"""verifiers.local.collateral.intel: the dcap-qvl collateral JSON, PCS responses (signed member and
signature), TCB info and QE identity, and the PCK CRL."""

from __future__ import annotations

from functools import partial

from fuzz._harness import NOW, attempt, read_vectors
from verifiers.local.collateral import intel


def seeds() -> list[bytes]:
    return read_vectors("tdx/dcap-qvl/*_collateral.json", "tdx/go-tdx-guest/sample_*", "tdx/go-tdx-guest/pckcrl",
                        "tdx/go-tdx-guest/rootcrl.der")


def _collateral(data: bytes) -> None:
    c = intel.parse_collateral(data)
    intel.collateral_json(c)
    for raw in (c.tcb_info, c.qe_identity):
        if raw is not None:
            attempt(partial(intel.parse_tcb_info, raw), partial(intel.parse_qe_identity, raw))
    for crl in (c.pck_crl, c.root_ca_crl):
        if crl is not None:
            attempt(partial(intel.load_crl, crl))


def _pcs(data: bytes, name: str) -> None:
    member, _signature = intel.pcs_member(data, name)
    attempt(lambda: intel.parse_tcb_info(member).current_at(NOW),
            lambda: intel.parse_qe_identity(member).current_at(NOW))


def TestOneInput(data: bytes) -> None:
    attempt(lambda: _collateral(data),
            lambda: _pcs(data, "tcbInfo"),
            lambda: _pcs(data, "enclaveIdentity"),
            lambda: intel.parse_tcb_info(data),
            lambda: intel.parse_qe_identity(data),
            lambda: intel.load_crl(data))
