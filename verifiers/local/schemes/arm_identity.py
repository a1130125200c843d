"""Arm device identity in CoRIM, shared by the PSA and CCA platform schemes.

Both find the device's attestation key through attest-key triples whose environment is the
implementation id (class id, tag 560) plus the instance id (UEID, tag 550), as Veraison does.
"""

from __future__ import annotations

from collections.abc import Collection

from federation.errors import Error
from federation.keys import VerificationKey

from ..corim.cryptokeys import public_key
from ..corim.model import ClassMap, Environment, Tagged
from ..corim.store import Provenance
from ..scheme import BadEvidence, Context

__all__ = ["TAG_BYTES", "TAG_UEID", "attestation_key", "implementation"]

TAG_BYTES, TAG_UEID = 560, 550


def implementation(implementation_id: bytes) -> Environment:
    """The environment naming a device class by its implementation id (reference-value lookups)."""
    return Environment(ClassMap(Tagged("bytes", implementation_id, TAG_BYTES)))


def attestation_key(ctx: Context, implementation_id: bytes, instance_id: bytes, *,
                    profiles: Collection[str] | None = None) -> tuple[VerificationKey, Provenance]:
    """The first usable key an attest-key triple binds to this device; BadEvidence when none."""
    env = Environment(ClassMap(Tagged("bytes", implementation_id, TAG_BYTES)),
                      instance=Tagged("ueid", instance_id, TAG_UEID))
    for hit in ctx.store.attest_keys(env, ctx.now, profiles=profiles):
        for material in hit.triple.keys:
            try:
                return VerificationKey.of(public_key(material), algorithms=None), hit.provenance
            except Error:
                continue
    raise BadEvidence("no trust anchor for evidence")
