#!/usr/bin/env bash
# The hostile / broken-input corpus: runs every test marked `bad_input` and prints one verdict line per case
# ("clear error", "UNCLEAR: ...", "WRONG: ...") and the counts. Extra arguments go to pytest (e.g. -k pickle).
# Usage: scripts/bad_inputs.sh            (from the repository root, after `pip install -e ".[dev]"`)
set -uo pipefail
cd "$(dirname "$0")/.."
python="${PYTHON:-.venv/bin/python}"
[ -x "$python" ] || python=python3
exec "$python" -m pytest -m bad_input -q -p no:cacheprovider --bad-input-report "$@"
