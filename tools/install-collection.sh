#!/usr/bin/env bash
# Build the collection artifact and install it into .collections, the way a
# user installs it (offline, no Galaxy). Called by `make collection`.
#
# Several builds may run at once (pytest workers, molecule, a second shell):
# one lock serializes them, and the new install is swapped in with renames so a
# playbook running meanwhile never sees half an install.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${BIN:-.venv/bin}
collections=${COLLECTIONS:-.collections}
artifact=${1:?usage: install-collection.sh <artifact path>}

exec 9>"$collections.lock"
flock 9

mkdir -p build
"$bin/ansible-galaxy" collection build --force --output-path build . >/dev/null
rm -rf "$collections.new"
ANSIBLE_COLLECTIONS_PATH="$collections.new" "$bin/ansible-galaxy" collection install --offline --force --no-deps \
  -p "$collections.new" "$artifact" >/dev/null
rm -rf "$collections.old"
[ ! -d "$collections" ] || mv "$collections" "$collections.old"
mv "$collections.new" "$collections"
echo "setup: fastier.platform $(sed -n 's/^version: *//p' galaxy.yml) installed in $collections"
