#!/usr/bin/env python3
"""CPU of ansible-playbook runs with and without the module code cache (tools/module_code_cache.py).

    .venv/bin/python -m bench.module_code_cache [--runs N] [--tasks N] [--site]

Starts a private local stack (free ports, temporary state) and runs, in turn
without and with the cache (a fresh cache directory, warmed by one run first):
a playbook of ``--tasks`` ``ping`` tasks and ``--tasks`` ``ec2_vpc_net_info``
tasks against the local AWS; with ``--site``, also the idempotent re-run of
site.yml on a platform converged once beforehand. CPU is the user + system time
of the ansible-playbook process and everything it started (the module
processes). Prints every run, the medians and the with / without ratio. A
benchmark, not a test: it asserts nothing about time. Needs ``make
module-code-cache`` (the start-up hook in .venv).
"""

from __future__ import annotations

import argparse
import resource
import shutil
import statistics
import sys
import tempfile
import textwrap
from pathlib import Path

from tests.localstack import acquire, release
from tests.playbooks import ensure_collection, run_playbook
from tools.module_code_cache import ENV, NAME

TASKS = textwrap.dedent(
    """\
    - name: Module calls, the cheapest and an AWS one
      hosts: localhost
      gather_facts: false
      tasks:
        - name: Ping
          ansible.builtin.ping:
          loop: "{{{{ range({n}) | list }}}}"
        - name: Describe the VPCs
          amazon.aws.ec2_vpc_net_info:
            endpoint_url: "{{{{ lookup('env', 'LOCAL_AWS_ENDPOINT') }}}}"
          loop: "{{{{ range({n}) | list }}}}"
    """
)


def cpu_of(env: dict[str, str], playbook: str | Path, **kwargs) -> float:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    run = run_playbook(env, playbook, **kwargs)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if run.rc != 0:
        sys.exit(f"{playbook} failed: {run.explain()}")
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--tasks", type=int, default=10)
    parser.add_argument("--site", action="store_true", help="also the idempotent re-run of site.yml")
    args = parser.parse_args()
    if not any(Path(p, f"{NAME}.pth").exists() for p in sys.path):
        sys.exit("the module code cache is not installed in this interpreter: run `make module-code-cache` first")
    ensure_collection()
    stack = acquire()
    work = Path(tempfile.mkdtemp(prefix="bench-mcc-"))
    try:
        playbook = work / "calls.yml"
        playbook.write_text(TASKS.format(n=args.tasks))
        without = {k: v for k, v in stack.env().items() if k != ENV}
        with_cache = {**without, ENV: str(work / "cache")}
        cases = {f"{args.tasks} ping + {args.tasks} ec2_vpc_net_info": (playbook, {})}
        if args.site:
            print("converging site.yml once ...", flush=True)
            cpu_of(without, "playbooks/site.yml")
            cases["site.yml, idempotent"] = ("playbooks/site.yml", {})
        cpu_of(with_cache, playbook)  # warms the cache
        for label, (book, kwargs) in cases.items():
            rows: dict[str, list[float]] = {"without": [], "with": []}
            for run in range(1, args.runs + 1):
                for mode, env in (("without", without), ("with", with_cache)):
                    rows[mode].append(cpu_of(env, book, **kwargs))
                print(f"{label}: run {run}: without {rows['without'][-1]:6.1f} CPU-s, with {rows['with'][-1]:6.1f} CPU-s", flush=True)
            a, b = statistics.median(rows["without"]), statistics.median(rows["with"])
            print(f"{label}: median of {args.runs}: without {a:.1f} CPU-s, with {b:.1f} CPU-s, with / without {b / a:.2f}", flush=True)
        entries = [p for p in (work / "cache").rglob("*") if p.is_file()]
        print(f"cache: {len(entries)} code objects, {sum(p.stat().st_size for p in entries) / 1e6:.1f} MB", flush=True)
    finally:
        release(stack)
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
