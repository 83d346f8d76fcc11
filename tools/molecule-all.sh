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
# bash's `time` counts the CPU of every playbook a scenario ran (user, system, wall)
TIMEFORMAT='%U %S %R'
times=$(mktemp)
trap 'rm -f "$times"' EXIT
for scenario in "${scenarios[@]}"; do
  echo "molecule: scenario ${scenario}"
  { time molecule test -s "${scenario}" 2>&3; } 3>&2 2>"$times"
  read -r user sys wall <"$times"
  echo "molecule: scenario ${scenario} passed: $(awk -v u="$user" -v s="$sys" -v w="$wall" 'BEGIN { printf "%.0f CPU-s, %.0f s", u + s, w }')"
done
echo "molecule: ${#scenarios[@]} scenario(s) passed: ${scenarios[*]}"
