"""molecule ``dr``: the tiers a restore needs, canary data, a snapshot, more data, the drill measured, nothing left."""

from __future__ import annotations

from tests.molecule.scenario import run_scenario


def test_molecule_dr(stack) -> None:
    assert run_scenario(stack, "dr") == ["create", "converge", "side_effect", "verify", "destroy"]
