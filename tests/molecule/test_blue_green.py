"""molecule ``blue_green``: a deploy, its idempotent re-run, another version rolled back, the ledger verified."""

from __future__ import annotations

from tests.molecule.scenario import run_scenario


def test_molecule_blue_green(stack) -> None:
    steps = run_scenario(stack, "blue_green")
    assert steps == ["create", "prepare", "check", "converge", "idempotence", "side_effect", "verify", "destroy"]
