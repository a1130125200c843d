"""verifiers.local.evidence.tdx: parse_quote (v4/v5, certification data, PEM chain); then what the TDX
scheme does with an unvalidated quote: PCK info of the leaf, chain validation, the quote checks."""

from __future__ import annotations

from fuzz._harness import NOW, attempt, fixed_key, read_vectors
from verifiers.local.collateral import intel
from verifiers.local.evidence import tdx


def seeds() -> list[bytes]:
    return read_vectors("tdx/go-tdx-guest/*.dat", "tdx/dcap-qvl/tdx_quote", "tdx/dcap-qvl/tdx_quote_outdated")


def _quote(data: bytes) -> None:
    quote = tdx.parse_quote(data)
    quote.to_json()
    attempt(lambda: quote.attestation_public_key(),
            lambda: tdx.verify_quote(quote, fixed_key().public.key))
    if quote.pck_chain:
        attempt(lambda: intel.parse_pck_info(quote.pck_chain[0]),
                lambda: intel.validate_chain(quote.pck_chain, NOW, leaf_name="Intel SGX PCK Certificate"))


def TestOneInput(data: bytes) -> None:
    attempt(lambda: tdx.sniff(data), lambda: _quote(data))
