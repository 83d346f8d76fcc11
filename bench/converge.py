#!/usr/bin/env python3
"""Time a full site.yml converge and its idempotent re-run on the local AWS.

    .venv/bin/python -m bench.converge [--runs N]

Starts a private local stack (free ports, temporary state), then per run:
converge on an empty account, re-run (must change nothing), check mode on the
converged account, teardown. Prints each figure, the medians and the re-run /
converge ratio. A benchmark, not a test: it asserts nothing about time.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

from tests.localstack import acquire, release
from tests.playbooks import ensure_collection, run_playbook


def timed(stack, playbook: str, **kwargs) -> tuple[float, int]:
    started = time.monotonic()
    run = run_playbook(stack.env(), playbook, **kwargs)
    elapsed = time.monotonic() - started
    if run.rc != 0:
        sys.exit(f"{playbook} failed: {run.explain()}")
    return elapsed, run.changed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    ensure_collection()
    stack = acquire()
    rows = []
    try:
        for run in range(1, args.runs + 1):
            converge, changed = timed(stack, "playbooks/site.yml")
            rerun, rerun_changed = timed(stack, "playbooks/site.yml")
            check, _ = timed(stack, "playbooks/site.yml", check=True)
            teardown, _ = timed(stack, "playbooks/teardown.yml", extra_vars={"teardown_confirm": "fastier-local", "teardown_delete_backups": True})
            rows.append((converge, rerun, check, teardown))
            print(
                f"run {run}: converge {converge:6.1f}s ({changed} changed)  re-run {rerun:6.1f}s ({rerun_changed} changed)  "
                f"check {check:6.1f}s  teardown {teardown:6.1f}s",
                flush=True,
            )
    finally:
        release(stack)
    med = [statistics.median(col) for col in zip(*rows, strict=True)]
    print(f"median of {len(rows)}: converge {med[0]:.1f}s, idempotent re-run {med[1]:.1f}s, check {med[2]:.1f}s, teardown {med[3]:.1f}s")
    print(f"re-run / converge ratio: {med[1] / med[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
