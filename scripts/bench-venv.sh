#!/usr/bin/env bash
# Creates (or refreshes) the Python venv for the peer benchmarks (ChromaDB, mem0).
# Usage: scripts/bench-venv.sh [VENV_DIR]   (default: .venv-bench)
# A second run with unchanged requirements is instant (sha256 stamp).
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${1:-.venv-bench}"
req=scripts/bench/requirements.txt
stamp="$venv/.requirements.sha256"
want=$(sha256sum "$req" | cut -d' ' -f1)
if [ -x "$venv/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
  exit 0
fi
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check -r "$req"
echo "$want" > "$stamp"
