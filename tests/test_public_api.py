"""The public surface is small and deliberate: changing it must be a conscious act."""

import federation
import federation.ear
import federation.errors


def test_federation_all_is_exact_and_sorted() -> None:
    assert federation.__all__ == sorted(federation.__all__)
    assert set(federation.__all__) == {
        "AppraisalResult", "Decision", "Error", "Evidence", "Federation", "Member", "Outcome",
        "QuorumPolicy", "Session", "SigningKey", "Tier", "TrustAnchor", "TrustVector", "VerifiedResult",
        "Vote", "load_signing_key", "load_trust_anchor", "verify_result",
    }
    for name in federation.__all__:
        assert getattr(federation, name) is not None


def test_every_error_has_a_distinct_machine_reason() -> None:
    classes = [getattr(federation.errors, n) for n in federation.errors.__all__]
    concrete = [c for c in classes if c not in (federation.errors.Error, federation.errors.VerificationError,
                                                federation.errors.BackendError)]
    reasons = [c.reason for c in concrete]
    assert len(reasons) == len(set(reasons)), reasons
    assert all(issubclass(c, federation.errors.Error) for c in classes)


def test_ear_subpackage_all_matches_its_names() -> None:
    for name in federation.ear.__all__:
        assert hasattr(federation.ear, name)
