"""molecule ``default``: site.yml --check on a fresh account, converge, verify (molecule/default/verify.yml), destroy."""

from __future__ import annotations

from tests.molecule.scenario import run_scenario


def test_molecule_default(stack) -> None:
    assert run_scenario(stack, "default") == ["create", "check", "converge", "verify", "destroy"]
