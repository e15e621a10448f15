"""Cuts the LoCoMo dev split the benchmarks use out of snap-research/LoCoMo's
data/locomo10.json: conversations conv-26, conv-30, conv-41, conv-42, conv-43.

Usage: python3 scripts/bench/locomo_split.py locomo10.json > locomo-dev.json
"""

import json
import sys

DEV = ["conv-26", "conv-30", "conv-41", "conv-42", "conv-43"]

data = json.load(open(sys.argv[1]))
by_id = {c["sample_id"]: c for c in data}
missing = [i for i in DEV if i not in by_id]
if missing:
    sys.exit(f"{sys.argv[1]} lacks conversations {missing}: is it LoCoMo's data/locomo10.json?")
json.dump([by_id[i] for i in DEV], sys.stdout)
