"""The example configs in config/ stay valid: a user copying one gets a working federation."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_local_psa import MT, N32, NOW, PSA

from federation import Evidence
from federation.config import load_config

CONFIG = Path(__file__).resolve().parents[1] / "config"


@pytest.mark.parametrize("path", sorted(CONFIG.glob("*.toml")), ids=lambda p: p.name)
def test_every_example_config_parses(path: Path) -> None:
    from verifiers.registry import kinds

    cfg = load_config(path)
    assert cfg.verifiers
    for vc in cfg.verifiers:  # files the config names are made by `ratsfed keys generate` and the like
        assert vc.spec.kind in kinds(), f"{path.name}: {vc.spec.name} names an unknown kind"


async def test_local_psa_example_runs_the_psa_vectors() -> None:
    fed = load_config(CONFIG / "local-psa.toml").build()
    async with fed:
        result = await fed.appraise(Evidence(MT, (PSA / "evidence" / "psa.good.cose").read_bytes()), N32,
                                    now=int(NOW.timestamp()))
    assert result.status == "affirming"
    assert result.decision.policy.distinct_operators
