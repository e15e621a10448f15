#!/usr/bin/env bash
# Creates (or refreshes) a Python venv from a requirements file.
# Usage: scripts/venv.sh REQUIREMENTS VENV_DIR
#   tests/compat/requirements.txt .venv       real clients driving engram (make test-compat)
#   scripts/bench/requirements.txt .venv-bench  the peers of the benchmarks (ChromaDB, mem0)
# A second run with unchanged requirements is instant (sha256 stamp).
set -euo pipefail
cd "$(dirname "$0")/.."
req="$1"
venv="$2"
stamp="$venv/.requirements.sha256"
want=$(sha256sum "$req" | cut -d' ' -f1)
if [ -x "$venv/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
  exit 0
fi
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check -r "$req"
echo "$want" > "$stamp"
