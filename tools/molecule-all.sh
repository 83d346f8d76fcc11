#!/usr/bin/env bash
# Run every molecule scenario (delegated driver, against the local stack that
# `make test` started: LOCAL_AWS_ENDPOINT is in the environment): every folder
# of molecule/ with a molecule.yml - blue_green, default and dr (disaster
# recovery: backups, a snapshot and the drill; its database listens on
# 127.0.0.1:15460, see molecule/dr/host_vars/localhost.yml).
set -euo pipefail
cd "$(dirname "$0")/.."
: "${LOCAL_AWS_ENDPOINT:?run through make test (it starts the local stack)}"
mapfile -t scenarios < <(find molecule -mindepth 2 -maxdepth 2 -name molecule.yml -printf '%h\n' 2>/dev/null | xargs -r -n1 basename | sort)
if [ "${#scenarios[@]}" -eq 0 ]; then
  echo "molecule: no scenarios in molecule/"
  exit 0
fi
for scenario in "${scenarios[@]}"; do
  echo "molecule: scenario ${scenario}"
  molecule test -s "${scenario}"
done
echo "molecule: ${#scenarios[@]} scenario(s) passed: ${scenarios[*]}"
