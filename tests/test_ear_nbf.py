"""`nbf` that is not an integer must not be ignored: a not-yet-valid token would pass."""

from __future__ import annotations

from typing import Any

import jwt
import pytest

from federation.ear import verify_ear
from federation.errors import MalformedError, StaleError
from federation.keys import SigningKey, TrustAnchor

CLAIMS = {"eat_profile": "tag:github.com,2023:veraison/ear", "iat": 1000,
          "ear.verifier-id": {"developer": "d", "build": "b"}, "submods": {"x": {"ear.status": "affirming"}}}


@pytest.mark.parametrize(("nbf", "error"), [(5000.5, MalformedError), ("5000", MalformedError), (True, MalformedError),
                                            (5000, StaleError)])
def test_nbf_in_the_future_or_not_an_integer_is_refused(nbf: Any, error: type[Exception]) -> None:
    key = SigningKey.generate()
    token = jwt.encode({**CLAIMS, "nbf": nbf}, key.key, algorithm="ES256", headers={"kid": key.kid})
    with pytest.raises(error):
        verify_ear(token, TrustAnchor((key.public,)), now=1000, leeway=0)


def test_nbf_in_the_past_is_accepted() -> None:
    key = SigningKey.generate()
    token = jwt.encode({**CLAIMS, "nbf": 900}, key.key, algorithm="ES256", headers={"kid": key.kid})
    assert verify_ear(token, TrustAnchor((key.public,)), now=1000).ear.status.label == "affirming"
