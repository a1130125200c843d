"""CoRIM / CoMID for the local appraiser: decode, verify, apply profiles, match, store.

A pure library (sans-IO) except :func:`load_paths`; every validity check takes the caller's
``now``. Typical use::

    store = load_paths(["corims/"], anchors=[endorser_anchor], now=now)
    for hit in store.attest_keys(Environment(ClassMap(impl_id), instance=inst_id), now):
        key = public_key(hit.triple.keys[0]); who = hit.provenance.signer_name
    refs = store.reference_values(Environment(ClassMap(impl_id)), now)
    ok = match_measurements(ref.triple.measurements, evidence_measurements)

Modules: ``model`` (dataclasses), ``wire`` / ``comid`` / ``decode`` (CBOR → model),
``signed`` (COSE verification, validity), ``rules`` / ``profiles`` (profiles as data),
``match`` (comparison rules), ``cryptokeys`` (key material), ``store`` (lookup + provenance),
``encode`` (model → CBOR, signing: the inverse of the decoder).
"""

from .comid import decode_comid
from .cryptokeys import public_key
from .decode import SignedCorim, decode_corim, decode_signed_corim, is_signed
from .encode import encode_comid, encode_corim, sign_corim
from .match import (
    match_digests,
    match_environment,
    match_int_range,
    match_measurement,
    match_measurements,
    match_raw_value,
    match_svn,
    match_values,
)
from .model import (
    ClassMap,
    Comid,
    Corim,
    CorimMeta,
    Digest,
    Environment,
    IntRange,
    Measurement,
    MeasurementValues,
    RawValue,
    Svn,
    Tagged,
    Triples,
    Validity,
    Version,
)
from .profiles import DEFAULT_PROFILES, PSA, PSA_LEGACY, Profile, ProfileError, ProfileRegistry, validate_profile
from .signed import VerifiedCorim, accept_unsigned, verify_corim, verify_signed_corim
from .store import Provenance, ReferenceValueStore, Stored, load_paths

__all__ = [
    "DEFAULT_PROFILES",
    "PSA",
    "PSA_LEGACY",
    "ClassMap",
    "Comid",
    "Corim",
    "CorimMeta",
    "Digest",
    "Environment",
    "IntRange",
    "Measurement",
    "MeasurementValues",
    "Profile",
    "ProfileError",
    "ProfileRegistry",
    "Provenance",
    "RawValue",
    "ReferenceValueStore",
    "SignedCorim",
    "Stored",
    "Svn",
    "Tagged",
    "Triples",
    "Validity",
    "VerifiedCorim",
    "Version",
    "accept_unsigned",
    "decode_comid",
    "decode_corim",
    "decode_signed_corim",
    "encode_comid",
    "encode_corim",
    "is_signed",
    "load_paths",
    "match_digests",
    "match_environment",
    "match_int_range",
    "match_measurement",
    "match_measurements",
    "match_raw_value",
    "match_svn",
    "match_values",
    "public_key",
    "sign_corim",
    "validate_profile",
    "verify_corim",
    "verify_signed_corim",
]
