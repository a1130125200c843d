"""verify_result as a relying party uses it: an honest combined token verifies, with and without
re-verification, and every way a federator (holding its own signing key) could lie about its
votes is refused with a specific error.

Forgeries decode the combined token's claims, edit them and RE-SIGN with the federation key, so
the outer signature is valid and only ``reverify`` (or ``expect_policy``) can catch the lie.
"""

from __future__ import annotations

import base64
import copy
import hashlib
from collections.abc import Callable, Mapping
from typing import Any

import jwt as pyjwt
import pytest
from fakes import EVIDENCE, NOW, FakeVerifier

from federation import cbor, cose
from federation.ar4si import Tier, TrustVector
from federation.ear import peek_claims
from federation.engine import Federation
from federation.errors import (
    BadSignatureError,
    Error,
    MalformedError,
    NonceMismatchError,
    PolicyError,
    StaleError,
    UntrustedKeyError,
)
from federation.keys import SigningKey, TrustAnchor
from federation.provenance import CBOR_KEY
from federation.quorum import QuorumPolicy
from federation.result import AppraisalResult, verify_result

A, W, C, N = Tier.AFFIRMING, Tier.WARNING, Tier.CONTRAINDICATED, Tier.NONE
FORMATS = ("jwt", "cwt")
NONCE = bytes(range(32))
OTHER_NONCE = bytes(range(100, 132))
JSON_PROVENANCE = "ear.ratsfed.provenance"


@pytest.fixture(scope="module")
def fed_key() -> SigningKey:
    return SigningKey.generate("ES256")


@pytest.fixture(scope="module")
def fed_anchor(fed_key: SigningKey) -> TrustAnchor:
    return TrustAnchor((fed_key.public,))


@pytest.fixture(scope="module")
def keys() -> dict[str, SigningKey]:
    return {name: SigningKey.generate("ES256") for name in ("a", "b", "c")}


def backends(keys: Mapping[str, SigningKey], statuses: Mapping[str, Tier], **kw: Any) -> list[FakeVerifier]:
    return [FakeVerifier(name, status=s, key=keys[name], **kw) for name, s in statuses.items()]


async def appraise(fed_key: SigningKey, vs: list[FakeVerifier], k: int, *, nonce: bytes = NONCE,
                   fmt: str = "jwt", **policy: Any) -> AppraisalResult:
    fed = Federation([v.member() for v in vs], QuorumPolicy(k=k, n=len(vs), **policy), fed_key,
                     clock=lambda: NOW, result_format=fmt)  # type: ignore[arg-type]
    return await fed.appraise(EVIDENCE, nonce)


def anchors(vs: list[FakeVerifier]) -> dict[str, TrustAnchor]:
    return {v.name: v.public_anchor for v in vs}


def reverify(token: bytes, fed_anchor: TrustAnchor, vs: list[FakeVerifier], **kw: Any) -> Any:
    return verify_result(token, fed_anchor, nonce=NONCE, now=NOW, reverify=True, anchors=anchors(vs), **kw)


# --- forging: decode, edit, re-sign with the federation key ---------------------------------------

def forge(token: bytes, key: SigningKey, edit: Callable[[str, dict[Any, Any]], None]) -> bytes:
    fmt, claims = peek_claims(token)
    claims = copy.deepcopy(claims)
    edit(fmt, claims)
    if fmt == "jwt":
        return pyjwt.encode(claims, key.key, algorithm=key.algorithm,
                            headers={"kid": key.kid, "typ": "JWT"}).encode("ascii")
    return cose.sign1(cbor.dumps(claims), key)


def provenance(fmt: str, claims: dict[Any, Any]) -> dict[str, Any]:
    prov: dict[str, Any] = claims[JSON_PROVENANCE] if fmt == "jwt" else claims[CBOR_KEY]
    return prov


def set_submod(fmt: str, claims: dict[Any, Any], name: str, status: Tier, vector: Mapping[str, int] | None) -> None:
    if fmt == "jwt":
        entry = claims["submods"][name]
        entry["ear.status"] = status.label
        if vector is not None:
            entry["ear.trustworthiness-vector"] = dict(vector)
    else:
        entry = claims[266][name]
        entry[1000] = status.code
        if vector is not None:
            entry[1001] = TrustVector.of(vector).to_cbor()


def result_text(raw: bytes) -> str:
    """How provenance embeds a raw result (JWT text as is, anything else base64url)."""
    return raw.decode("ascii") if raw.startswith(b"ey") else base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def sha256(raw: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(raw).digest()).rstrip(b"=").decode()


# --- honest tokens -----------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("backend_fmt", FORMATS)
async def test_an_honest_combined_token_reverifies(fed_key: SigningKey, fed_anchor: TrustAnchor,
                                                   keys: dict[str, SigningKey], fmt: str, backend_fmt: str) -> None:
    vs = backends(keys, {"a": A, "b": A, "c": W}, fmt=backend_fmt)
    r = await appraise(fed_key, vs, 2, fmt=fmt)
    assert r.status == "affirming"
    plain = verify_result(r.token, fed_anchor, nonce=NONCE, now=NOW)
    assert plain.status == "affirming" and plain.decision is None
    checked = reverify(r.token, fed_anchor, vs, expect_policy=QuorumPolicy(k=2, n=3))
    assert checked.decision is not None
    assert checked.decision.status is A
    assert {n: s.status for n, s in checked.decision.submods.items()} == {"PSA_IOT": A}
    assert checked.decision.explain() == r.decision.explain()


async def test_honest_tokens_with_failures_and_vetoes_reverify(fed_key: SigningKey, fed_anchor: TrustAnchor,
                                                               keys: dict[str, SigningKey]) -> None:
    vs = [FakeVerifier("a", key=keys["a"]), FakeVerifier("b", key=keys["b"], fault="bad-signature"),
          FakeVerifier("c", key=keys["c"], status=C)]
    r = await appraise(fed_key, vs, 1)
    assert r.status == "contraindicated"
    assert reverify(r.token, fed_anchor, vs).decision.status is C


async def test_an_honest_token_with_renamed_submods_reverifies(fed_key: SigningKey, fed_anchor: TrustAnchor,
                                                               keys: dict[str, SigningKey]) -> None:
    a, b = FakeVerifier("a", key=keys["a"]), FakeVerifier("b", key=keys["b"], submod="psa-iot")
    fed = Federation([a.member(), b.member(rename={"psa-iot": "PSA_IOT"})], QuorumPolicy(2, 2), fed_key,
                     clock=lambda: NOW)
    r = await fed.appraise(EVIDENCE, NONCE)
    assert r.status == "affirming" and set(r.ear.submods) == {"PSA_IOT"}
    assert reverify(r.token, fed_anchor, [a, b]).decision.status is A


async def test_a_rename_that_merges_submods_fails_closed(fed_key: SigningKey, fed_anchor: TrustAnchor,
                                                         keys: dict[str, SigningKey]) -> None:
    """Mapping two of a result's submods to one name would drop one (maybe a contraindicated one)."""
    a = FakeVerifier("a", key=keys["a"])
    b = FakeVerifier("b", key=keys["b"], submod="psa", more_submods={"psa-rot": C})
    fed = Federation([a.member(), b.member(rename={"psa": "PSA_IOT", "psa-rot": "PSA_IOT"})], QuorumPolicy(1, 2),
                     fed_key, clock=lambda: NOW)
    r = await fed.appraise(EVIDENCE, NONCE)
    assert {v.backend: v.outcome.value for v in r.votes} == {"a": "ok", "b": "malformed"}
    # and a federator that claims such a table for an ok vote is refused on re-verification
    honest = await Federation([a.member(), b.member()], QuorumPolicy(1, 2), fed_key,
                              clock=lambda: NOW).appraise(EVIDENCE, NONCE)
    assert honest.status == "contraindicated"

    def merge(fmt: str, claims: dict[Any, Any]) -> None:
        provenance(fmt, claims)["votes"][1]["rename"] = {"psa": "PSA_IOT", "psa-rot": "PSA_IOT"}

    with pytest.raises(PolicyError, match="merges"):
        reverify(forge(honest.token, fed_key, merge), fed_anchor, [a, b])


# --- the outer token -----------------------------------------------------------------------------------

async def test_the_outer_signature_nonce_and_time_are_checked(fed_key: SigningKey, fed_anchor: TrustAnchor,
                                                              keys: dict[str, SigningKey]) -> None:
    vs = backends(keys, {"a": A, "b": A})
    r = await appraise(fed_key, vs, 2)
    with pytest.raises(UntrustedKeyError):  # another key, another kid
        verify_result(r.token, TrustAnchor((SigningKey.generate("ES256").public,)), now=NOW)
    impostor = SigningKey.of(SigningKey.generate("ES256").key, "ES256", kid=fed_key.kid)
    with pytest.raises(BadSignatureError):
        verify_result(forge(r.token, impostor, lambda f, c: None), fed_anchor, now=NOW)
    with pytest.raises(NonceMismatchError):
        verify_result(r.token, fed_anchor, nonce=OTHER_NONCE, now=NOW)
    with pytest.raises(StaleError):
        verify_result(r.token, fed_anchor, now=NOW + 3600)


@pytest.mark.parametrize("fmt", FORMATS)
async def test_an_edit_without_the_federation_key_breaks_the_signature(
        fed_key: SigningKey, fed_anchor: TrustAnchor, keys: dict[str, SigningKey], fmt: str) -> None:
    vs = backends(keys, {"a": A, "b": W})
    r = await appraise(fed_key, vs, 2, fmt=fmt)
    assert r.status == "warning"
    tampered = bytearray(r.token)
    if fmt == "jwt":  # flip one bit in the payload segment
        i = r.token.index(b".") + 10
        tampered[i] = ord("A") if tampered[i] != ord("A") else ord("B")
    else:
        i = r.token.index(b"warning") if b"warning" in r.token else len(r.token) // 2
        tampered[i] ^= 0x01
    with pytest.raises((BadSignatureError, MalformedError)):
        verify_result(bytes(tampered), fed_anchor, now=NOW)


# --- swapped embedded results ------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", FORMATS)
async def test_a_swapped_result_with_the_old_digest_is_refused(fed_key: SigningKey, fed_anchor: TrustAnchor,
                                                               keys: dict[str, SigningKey], fmt: str) -> None:
    vs = backends(keys, {"a": A, "b": W})
    r = await appraise(fed_key, vs, 1, fmt=fmt)
    # another valid result of backend b, same session, saying affirming
    other = await appraise(fed_key, backends(keys, {"a": A, "b": A}), 1)
    b_affirming = other.votes[1].raw
    assert b_affirming is not None

    def swap(f: str, claims: dict[Any, Any]) -> None:
        provenance(f, claims)["votes"][1]["result"] = result_text(b_affirming)

    with pytest.raises(BadSignatureError, match="digest"):
        reverify(forge(r.token, fed_key, swap), fed_anchor, vs)


@pytest.mark.parametrize("fmt", FORMATS)
async def test_a_swapped_result_with_a_fresh_digest_is_caught_by_its_status(
        fed_key: SigningKey, fed_anchor: TrustAnchor, keys: dict[str, SigningKey], fmt: str) -> None:
    vs = backends(keys, {"a": W, "b": W})
    r = await appraise(fed_key, vs, 2, fmt=fmt)
    assert r.status == "warning"
    other = await appraise(fed_key, backends(keys, {"a": A, "b": A}), 2)  # same nonce, affirming
    b_affirming = other.votes[1].raw
    assert b_affirming is not None

    def swap(f: str, claims: dict[Any, Any]) -> None:
        vote = provenance(f, claims)["votes"][1]
        vote["result"], vote["result_sha256"] = result_text(b_affirming), sha256(b_affirming)

    with pytest.raises(PolicyError, match="recorded status"):
        reverify(forge(r.token, fed_key, swap), fed_anchor, vs)

    def swap_and_lie_consistently(f: str, claims: dict[Any, Any]) -> None:
        """Swap, fix digest and recorded status, and upgrade the verdict: it does not follow (a warns)."""
        swap(f, claims)
        provenance(f, claims)["votes"][1]["status"] = "affirming"
        provenance(f, claims)["votes"][1]["submods"] = {"PSA_IOT": "affirming"}
        set_submod(f, claims, "PSA_IOT", A, {"instance-identity": 2, "executables": 2, "hardware": 2,
                                             "configuration": 0})

    with pytest.raises(PolicyError, match="does not follow"):
        reverify(forge(r.token, fed_key, swap_and_lie_consistently), fed_anchor, vs)


@pytest.mark.parametrize("fmt", FORMATS)
async def test_a_result_from_another_session_is_caught_by_its_nonce(
        fed_key: SigningKey, fed_anchor: TrustAnchor, keys: dict[str, SigningKey], fmt: str) -> None:
    vs = backends(keys, {"a": A, "b": W})
    r = await appraise(fed_key, vs, 2, fmt=fmt)
    replayed = (await appraise(fed_key, backends(keys, {"a": A, "b": A}), 2, nonce=OTHER_NONCE)).votes[1].raw
    assert replayed is not None

    def swap(f: str, claims: dict[Any, Any]) -> None:
        vote = provenance(f, claims)["votes"][1]
        vote["result"], vote["result_sha256"] = result_text(replayed), sha256(replayed)
        vote["status"] = "affirming"

    with pytest.raises(NonceMismatchError):
        reverify(forge(r.token, fed_key, swap), fed_anchor, vs)


async def test_a_result_signed_by_another_key_is_refused(fed_key: SigningKey, fed_anchor: TrustAnchor,
                                                         keys: dict[str, SigningKey]) -> None:
    vs = backends(keys, {"a": A, "b": W})
    r = await appraise(fed_key, vs, 2)
    # a result "from b" signed with a's key
    stolen = (await appraise(fed_key, [FakeVerifier("a", key=keys["a"]), FakeVerifier("b", key=keys["a"])],
                             2)).votes[1].raw
    assert stolen is not None

    def swap(f: str, claims: dict[Any, Any]) -> None:
        vote = provenance(f, claims)["votes"][1]
        vote["result"], vote["result_sha256"], vote["status"] = result_text(stolen), sha256(stolen), "affirming"

    with pytest.raises(UntrustedKeyError):
        reverify(forge(r.token, fed_key, swap), fed_anchor, vs)


async def test_a_wrong_key_thumbprint_is_refused(fed_key: SigningKey, fed_anchor: TrustAnchor,
                                                 keys: dict[str, SigningKey]) -> None:
    vs = backends(keys, {"a": A, "b": A})
    r = await appraise(fed_key, vs, 2)

    def relabel(f: str, claims: dict[Any, Any]) -> None:
        provenance(f, claims)["votes"][0]["key_thumbprint"] = keys["b"].public.thumbprint

    with pytest.raises(PolicyError, match="thumbprint"):
        reverify(forge(r.token, fed_key, relabel), fed_anchor, vs)


# --- decisions that do not follow from the votes --------------------------------------------------------

@pytest.mark.parametrize("fmt", FORMATS)
async def test_a_decision_that_does_not_follow_from_its_votes_is_refused(
        fed_key: SigningKey, fed_anchor: TrustAnchor, keys: dict[str, SigningKey], fmt: str) -> None:
    vs = backends(keys, {"a": A, "b": W, "c": W})
    r = await appraise(fed_key, vs, 2, fmt=fmt)
    assert r.status == "warning"
    affirming_vector = {"instance-identity": 2, "executables": 2, "hardware": 2, "configuration": 0}

    def upgrade(f: str, claims: dict[Any, Any]) -> None:
        set_submod(f, claims, "PSA_IOT", A, affirming_vector)

    forged = forge(r.token, fed_key, upgrade)
    assert verify_result(forged, fed_anchor, nonce=NONCE, now=NOW).status == "affirming"  # signature fine
    with pytest.raises(PolicyError, match="does not follow"):
        reverify(forged, fed_anchor, vs)


@pytest.mark.parametrize("fmt", FORMATS)
async def test_an_edited_trust_vector_is_refused(fed_key: SigningKey, fed_anchor: TrustAnchor,
                                                 keys: dict[str, SigningKey], fmt: str) -> None:
    vs = backends(keys, {"a": A, "b": A})
    r = await appraise(fed_key, vs, 2, fmt=fmt)

    def better_hardware(f: str, claims: dict[Any, Any]) -> None:
        set_submod(f, claims, "PSA_IOT", A, {"instance-identity": 2, "executables": 2, "hardware": 2,
                                             "configuration": 2})

    with pytest.raises(PolicyError, match="does not follow"):
        reverify(forge(r.token, fed_key, better_hardware), fed_anchor, vs)


async def test_a_submod_no_vote_supports_is_refused(fed_key: SigningKey, fed_anchor: TrustAnchor,
                                                    keys: dict[str, SigningKey]) -> None:
    vs = backends(keys, {"a": A, "b": A})
    r = await appraise(fed_key, vs, 2)

    def add(f: str, claims: dict[Any, Any]) -> None:
        claims["submods"]["GPU"] = copy.deepcopy(claims["submods"]["PSA_IOT"])

    with pytest.raises(PolicyError, match="submods"):
        reverify(forge(r.token, fed_key, add), fed_anchor, vs)


async def test_a_vote_turned_ok_without_proof_is_refused(fed_key: SigningKey, fed_anchor: TrustAnchor,
                                                         keys: dict[str, SigningKey]) -> None:
    """A failed vote claimed ok after the fact has no verifiable result to show."""
    vs = [FakeVerifier("a", key=keys["a"]), FakeVerifier("b", key=keys["b"], fault="wrong-nonce")]
    r = await appraise(fed_key, vs, 2)
    assert r.status == "none"

    def claim_ok(f: str, claims: dict[Any, Any]) -> None:
        vote = provenance(f, claims)["votes"][1]
        vote["outcome"], vote["status"] = "ok", "affirming"
        set_submod(f, claims, "PSA_IOT", A, None)

    with pytest.raises(NonceMismatchError):  # its embedded result is the wrong-nonce one
        reverify(forge(r.token, fed_key, claim_ok), fed_anchor, vs)

    def claim_ok_without_result(f: str, claims: dict[Any, Any]) -> None:
        claim_ok(f, claims)
        del provenance(f, claims)["votes"][1]["result"]

    with pytest.raises(MalformedError, match="not embedded"):
        reverify(forge(r.token, fed_key, claim_ok_without_result), fed_anchor, vs)


@pytest.mark.parametrize("fmt", FORMATS)
async def test_a_vote_list_of_the_wrong_length_is_refused(fed_key: SigningKey, fed_anchor: TrustAnchor,
                                                          keys: dict[str, SigningKey], fmt: str) -> None:
    vs = backends(keys, {"a": A, "b": A, "c": W})
    r = await appraise(fed_key, vs, 2, fmt=fmt)

    def drop(f: str, claims: dict[Any, Any]) -> None:
        del provenance(f, claims)["votes"][2]  # hide the dissenter

    with pytest.raises(PolicyError, match="3"):
        reverify(forge(r.token, fed_key, drop), fed_anchor, vs)

    def duplicate(f: str, claims: dict[Any, Any]) -> None:
        votes = provenance(f, claims)["votes"]
        votes[2] = copy.deepcopy(votes[0])

    with pytest.raises(PolicyError, match="twice"):
        reverify(forge(r.token, fed_key, duplicate), fed_anchor, vs)


async def test_a_missing_anchor_for_an_ok_vote_is_refused(fed_key: SigningKey, fed_anchor: TrustAnchor,
                                                          keys: dict[str, SigningKey]) -> None:
    vs = [*backends(keys, {"a": A, "b": A}), FakeVerifier("c", key=keys["c"], fault="stale")]
    r = await appraise(fed_key, vs, 2)
    some = anchors(vs)
    del some["c"]  # a failed vote needs no anchor
    assert verify_result(r.token, fed_anchor, nonce=NONCE, now=NOW, reverify=True, anchors=some).status == "affirming"
    del some["b"]
    with pytest.raises(UntrustedKeyError, match="'b'"):
        verify_result(r.token, fed_anchor, nonce=NONCE, now=NOW, reverify=True, anchors=some)
    with pytest.raises(UntrustedKeyError):
        verify_result(r.token, fed_anchor, nonce=NONCE, now=NOW, reverify=True)
    wrong = {**anchors(vs), "a": vs[1].public_anchor}  # a's vote under b's key
    with pytest.raises(UntrustedKeyError):
        verify_result(r.token, fed_anchor, nonce=NONCE, now=NOW, reverify=True, anchors=wrong)


async def test_reverify_needs_embedded_results(fed_key: SigningKey, fed_anchor: TrustAnchor,
                                               keys: dict[str, SigningKey]) -> None:
    vs = backends(keys, {"a": A, "b": A})
    fed = Federation([v.member() for v in vs], QuorumPolicy(2, 2), fed_key, clock=lambda: NOW, embed_results=False)
    r = await fed.appraise(EVIDENCE, NONCE)
    assert verify_result(r.token, fed_anchor, nonce=NONCE, now=NOW).status == "affirming"
    with pytest.raises(MalformedError, match="not embedded"):
        reverify(r.token, fed_anchor, vs)


# --- policy ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("token_policy", "expected"), [
    ({"k": 1}, {"k": 2}),
    ({"k": 2, "veto": False}, {"k": 2}),
    ({"k": 2}, {"k": 2, "distinct_operators": True}),
])
async def test_a_weaker_policy_than_expected_is_refused(
        fed_key: SigningKey, fed_anchor: TrustAnchor, keys: dict[str, SigningKey],
        token_policy: dict[str, Any], expected: dict[str, Any]) -> None:
    vs = backends(keys, {"a": A, "b": A, "c": A})
    r = await appraise(fed_key, vs, **token_policy)
    with pytest.raises(PolicyError, match="weaker"):
        verify_result(r.token, fed_anchor, nonce=NONCE, now=NOW, expect_policy=QuorumPolicy(n=3, **expected))
    assert verify_result(r.token, fed_anchor, nonce=NONCE, now=NOW,
                         expect_policy=QuorumPolicy(n=3, **token_policy)).status == "affirming"


async def test_a_forged_policy_is_caught_by_the_expected_one(fed_key: SigningKey, fed_anchor: TrustAnchor,
                                                             keys: dict[str, SigningKey]) -> None:
    """A federator claiming 1-of-3 (so that a lone affirming vote 'follows') is refused by an RP
    that pins 2-of-3; the recomputed decision on the claimed policy is consistent, by design."""
    vs = backends(keys, {"a": A, "b": W, "c": W})
    r = await appraise(fed_key, vs, 2)
    assert r.status == "warning"

    def weaken(f: str, claims: dict[Any, Any]) -> None:
        provenance(f, claims)["policy"]["k"] = 1
        set_submod(f, claims, "PSA_IOT", A, {"instance-identity": 2, "executables": 2, "hardware": 2,
                                             "configuration": 0})

    forged = forge(r.token, fed_key, weaken)
    assert reverify(forged, fed_anchor, vs).status == "affirming"
    with pytest.raises(PolicyError, match="weaker"):
        reverify(forged, fed_anchor, vs, expect_policy=QuorumPolicy(k=2, n=3))


async def test_a_malformed_policy_is_refused(fed_key: SigningKey, fed_anchor: TrustAnchor,
                                             keys: dict[str, SigningKey]) -> None:
    vs = backends(keys, {"a": A, "b": A})
    r = await appraise(fed_key, vs, 2)
    for field, value in (("k", 0), ("k", True), ("veto", "no"), ("wait", "sometimes"), ("n", 99)):
        def edit(f: str, claims: dict[Any, Any], field: str = field, value: Any = value) -> None:
            provenance(f, claims)["policy"][field] = value

        with pytest.raises((MalformedError, PolicyError)):
            reverify(forge(r.token, fed_key, edit), fed_anchor, vs)


async def test_not_a_combined_result(fed_key: SigningKey, keys: dict[str, SigningKey]) -> None:
    """A backend's own EAR verifies, but is no combined result to re-verify or hold to a policy."""
    a = FakeVerifier("a", key=keys["a"])
    raw = (await appraise(fed_key, [a], 1)).votes[0].raw
    assert raw is not None
    assert verify_result(raw, a.public_anchor, nonce=NONCE, now=NOW).provenance is None
    with pytest.raises(PolicyError):
        verify_result(raw, a.public_anchor, nonce=NONCE, now=NOW, reverify=True, anchors={"a": a.public_anchor})
    with pytest.raises(PolicyError):
        verify_result(raw, a.public_anchor, nonce=NONCE, now=NOW, expect_policy=QuorumPolicy(1, 1))


def test_every_refusal_is_a_typed_error() -> None:
    for cls in (BadSignatureError, PolicyError, UntrustedKeyError, NonceMismatchError, MalformedError, StaleError):
        assert issubclass(cls, Error)
        assert cls("x").reason != "error"
