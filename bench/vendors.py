"""CPU cost of checking one vendor token (Intel TA, Azure Attestation, Google), next to the bare
signature verification it cannot avoid.

Input: the real tokens in ``../shared/vectors/vendor-results`` that verify, each at its own time
(they are all expired): Intel Trust Authority's SGX token (PS384, RSA-3072), Azure Attestation's
azurevm token (RS256, RSA-2048, 10 KB of claims), Google's Confidential Space PKI token (RS256,
an ``x5c`` chain of three certificates validated to the pinned root). Per token, interleaved round
by round in one process so every figure shares the run's conditions:

* ``check``: :func:`verifiers.vendor.verify_token`, everything the federation does with a vendor's
  answer: header rules, signature under the configured anchor, time, issuer, the table mapping to
  an EAR with annotated evidence (no binding: these tokens belong to no session of ours);
* ``floor``: one bare ``cryptography`` verification of the same JWS signature with the same key
  (for Google: the leaf key from ``x5c``, and not the chain), the unit the ratio is given in.

Figures are medians of per-round CPU time (``time.process_time_ns``); ratios are of medians.

Usage::

    .venv/bin/python bench/vendors.py              # 300 rounds
    .venv/bin/python bench/vendors.py --quick      # 20 rounds (smoke)
    .venv/bin/python bench/vendors.py --json out.json
"""

from __future__ import annotations

import argparse
import base64
import json
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from federation.keys import jwk_to_public, load_trust_anchor
from verifiers.vendor import verify_token

VECTORS = Path(__file__).resolve().parents[1].parent / "shared" / "vectors" / "vendor-results"


def _b64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _claims(token: str) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(_b64url(token.split(".")[1]))
    return out


def _floor(token: str, key: rsa.RSAPublicKey, alg: str) -> Callable[[], None]:
    head, body, sig = token.split(".")
    signed, signature = f"{head}.{body}".encode(), _b64url(sig)
    pad: padding.AsymmetricPadding
    digest: hashes.HashAlgorithm
    if alg == "PS384":
        pad, digest = padding.PSS(mgf=padding.MGF1(hashes.SHA384()), salt_length=48), hashes.SHA384()
    else:
        pad, digest = padding.PKCS1v15(), hashes.SHA256()
    return lambda: key.verify(signature, signed, pad, digest)


def cases() -> dict[str, tuple[Callable[[], object], Callable[[], None]]]:
    out: dict[str, tuple[Callable[[], object], Callable[[], None]]] = {}
    ita = (VECTORS / "ita" / "sgx-v1-dev-c-client.jwt").read_text().strip()
    ita_jwks = VECTORS / "ita" / "sgx-v1-dev-c-client.jwks.json"
    ita_anchor = load_trust_anchor(ita_jwks)
    ita_key = jwk_to_public(json.loads(ita_jwks.read_text())["keys"][0])
    assert isinstance(ita_key, rsa.RSAPublicKey)
    ita_at = _claims(ita)["iat"] + 1
    out["ita PS384"] = (lambda: verify_token("ita", ita, ita_anchor, now=ita_at), _floor(ita, ita_key, "PS384"))

    maa = (VECTORS / "maa" / "azurevm-sevsnp-sharedweu-cvm-clientlib.jwt").read_text().strip()
    maa_jwks = VECTORS / "maa" / "sharedweu-signing-key.jwks.json"
    maa_anchor = load_trust_anchor(maa_jwks)
    maa_key = jwk_to_public(json.loads(maa_jwks.read_text())["keys"][0])
    assert isinstance(maa_key, rsa.RSAPublicKey)
    maa_at = _claims(maa)["iat"] + 1
    out["maa RS256"] = (lambda: verify_token("maa", maa, maa_anchor, now=maa_at), _floor(maa, maa_key, "RS256"))

    google = (VECTORS / "google" / "cs-pki-sev-debug-oak.jwt").read_text().strip()
    google_anchor = load_trust_anchor(VECTORS / "google" / "confidential-space-root-ca.crt")
    header = json.loads(_b64url(google.split(".")[0]))
    leaf = x509.load_der_x509_certificate(base64.b64decode(header["x5c"][0])).public_key()
    assert isinstance(leaf, rsa.RSAPublicKey)
    google_at = _claims(google)["iat"] + 1
    out["google RS256+x5c"] = (lambda: verify_token("google", google, google_anchor, now=google_at),
                               _floor(google, leaf, "RS256"))
    return out


def _cpu(fn: Callable[[], object]) -> int:
    start = time.process_time_ns()
    fn()
    return time.process_time_ns() - start


def run(rounds: int) -> dict[str, dict[str, float]]:
    table = cases()
    samples: dict[str, dict[str, list[int]]] = {name: {"check": [], "floor": []} for name in table}
    for check, floor in table.values():  # warm-up (imports, first-use caches)
        check()
        floor()
    for _ in range(rounds):
        for name, (check, floor) in table.items():
            samples[name]["check"].append(_cpu(check))
            samples[name]["floor"].append(_cpu(floor))
    out = {}
    for name, s in samples.items():
        check_us = statistics.median(s["check"]) / 1000
        floor_us = statistics.median(s["floor"]) / 1000
        out[name] = {"check_us": round(check_us, 1), "floor_us": round(floor_us, 1),
                     "ratio": round(check_us / floor_us, 2) if floor_us else float("nan")}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--rounds", type=int, default=300)
    ap.add_argument("--quick", action="store_true", help="20 rounds (a smoke run)")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args(argv)
    if not VECTORS.is_dir():
        print(f"vendor vectors not found at {VECTORS}", file=sys.stderr)
        return 2
    rounds = 20 if args.quick else args.rounds
    figures = run(rounds)
    print(f"vendor token checks, median CPU per token over {rounds} rounds ({datetime.now(UTC):%Y-%m-%d})")
    print(f"{'token':<20} {'check µs':>10} {'floor µs':>10} {'check/floor':>12}")
    for name, f in figures.items():
        print(f"{name:<20} {f['check_us']:>10.1f} {f['floor_us']:>10.1f} {f['ratio']:>12.2f}")
    if args.json:
        args.json.write_text(json.dumps({"rounds": rounds, "figures": figures}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
