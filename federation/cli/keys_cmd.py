"""``ratsfed keys generate``: a signing key for a federation or a local appraiser."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from ..keys import SigningKey

__all__ = ["add_parser"]


def _generate(args: argparse.Namespace) -> int:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    key = SigningKey.generate(args.alg)
    private = out / "private.pem"
    fd = os.open(private, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # O_CREAT's mode applies to a new file only: an existing one may be readable
    with os.fdopen(fd, "wb") as fh:
        fh.write(key.private_pem())
    public = out / "public.jwk"
    public.write_text(json.dumps(key.public.jwk(), indent=2) + "\n")
    print(f"wrote {private} (mode 600) and {public}; kid {key.kid}")
    return 0


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    keys = sub.add_parser("keys", help="key management")
    ksub = keys.add_subparsers(dest="keys_command", required=True)
    gen = ksub.add_parser("generate", help="generate a private key (PEM) and its public JWK")
    gen.add_argument("--out", required=True, help="folder to write private.pem and public.jwk into")
    gen.add_argument("--alg", default="ES256", choices=["ES256", "ES384", "EdDSA", "PS256"])
    gen.set_defaults(func=_generate)
