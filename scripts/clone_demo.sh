#!/usr/bin/env bash
# A plain `git clone` is enough: clone the committed tree into a folder with nothing beside
# it, run `make demo` there, and require the seed page's headline in its output. .ci/run calls
# this before `make test`; so can you: bash scripts/clone_demo.sh
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
HEADLINE="South Korea proposes Kaesong talks with North"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
git clone -q "$ROOT" "$work/newspipe"
if [ -e "$work/shared" ]; then echo "clone_demo: $work/shared exists" >&2; exit 1; fi
# the clone fetches its own jars (Maven's local repository makes that quick on a warm machine)
start=$(date +%s)
(cd "$work/newspipe" && make demo) 2>&1 | tee "$work/demo.log"
echo "clone_demo: make demo in a fresh clone took $(( $(date +%s) - start )) s"
grep -qF "$HEADLINE" "$work/demo.log" || { echo "clone_demo: headline not printed" >&2; exit 1; }
echo "clone_demo: ok (seed headline printed from a clone with nothing beside it)"
