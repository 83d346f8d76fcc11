#!/usr/bin/env bash
# ansible-test sanity on the collection as users get it: the built artifact,
# installed at ansible_collections/fastier/platform in a scratch folder outside
# this work tree (inside it, ansible-test would follow this repo's git and its
# ignore rules). Offline: the pip bootstrap comes from tools/offline-get-pip.sh.
set -euo pipefail
artifact=${1:?usage: tools/sanity.sh ARTIFACT [ansible-test args]}
shift
here=$(cd "$(dirname "$0")/.." && pwd)
"$here/tools/offline-get-pip.sh"
scratch=$(mktemp -d "${TMPDIR:-/tmp}/fastier-sanity.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
ansible-galaxy collection install --offline --force --no-deps -p "$scratch" "$artifact" >/dev/null
# The collections we depend on (shipped in the ansible package) must sit
# beside ours for the import and validate-modules tests.
deps=$(python -c 'import ansible_collections.amazon.aws as m, os; print(os.path.dirname(os.path.dirname(list(m.__path__)[0])))')
for dep in amazon/aws community/aws community/postgresql community/crypto; do
  mkdir -p "$scratch/ansible_collections/${dep%/*}"
  ln -s "$deps/$dep" "$scratch/ansible_collections/$dep"
done
cd "$scratch/ansible_collections/fastier/platform"
ansible-test sanity --venv --python 3.11 --color no "$@" 2>&1 | grep -v "^WARNING: Location .file:///opt"
