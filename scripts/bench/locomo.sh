# Sourced by the benchmarks that replay LoCoMo: checks $LOCOMO, the dev split
# they measure on, and says where to get it when it is missing.
#
# The dev split is five conversations of the LoCoMo long-term conversational
# memory benchmark (snap-research/LoCoMo, data/locomo10.json, CC BY-NC 4.0):
# conv-26, conv-30, conv-41, conv-42 and conv-43, as one JSON list. It is not
# shipped with Engram (its licence is non-commercial). Get locomo10.json from
# https://github.com/snap-research/LoCoMo and cut the split with
#   python3 scripts/bench/locomo_split.py path/to/locomo10.json > locomo-dev.json
# then run e.g. `make bench-quality LOCOMO=locomo-dev.json`.
if [ -z "${LOCOMO:-}" ]; then
  echo "LOCOMO is not set: point it at the LoCoMo dev split (see scripts/bench/locomo.sh for where to get it)" >&2
  exit 2
fi
if [ ! -f "$LOCOMO" ]; then
  echo "LOCOMO=$LOCOMO does not exist (see scripts/bench/locomo.sh for where to get the LoCoMo dev split)" >&2
  exit 2
fi
LOCOMO=$(cd "$(dirname "$LOCOMO")" && pwd)/$(basename "$LOCOMO")
export LOCOMO
