"""LoCoMo data for the retrieval-quality benchmarks, shared by the Engram and
mem0 drivers so both read the turns, questions and evidence the same way.

A memory is one turn, text "<speaker>: <text>" (the turn's text verbatim). A
question is scored when it has evidence; a hit at k means one of its evidence
turns is among the top k results. Evidence ids are normalised: whitespace
stripped, split on ';' or ',', "D:11:26" -> "D11:26"; ids that match no turn
are reported (the question still counts, as a miss unless another id hits).
"""
import re

CATEGORIES = {1: "multi-hop", 2: "temporal", 3: "open-domain", 4: "single-hop", 5: "adversarial"}
KS = (1, 5, 10)


def turns_of(conv):
    """(session number, date, turn) for every turn, sessions in numeric order."""
    out = []
    nums = sorted(int(k.split("_")[1]) for k in conv if re.fullmatch(r"session_\d+", k))
    for s in nums:
        date = conv.get(f"session_{s}_date_time", "")
        for t in conv[f"session_{s}"]:
            out.append((s, date, t))
    return out


def memory_text(turn):
    return f"{turn['speaker']}: {turn['text']}"


def normalise_evidence(ids):
    out = []
    for raw in ids:
        for part in re.split(r"[;,]", raw):
            part = re.sub(r"\s+", "", part)
            m = re.fullmatch(r"D:?(\d+):(\d+)", part)
            if m:
                part = f"D{m.group(1)}:{m.group(2)}"
            if part:
                out.append(part)
    return out


def questions(conv_record):
    """(question, category, evidence ids) for every question with evidence."""
    return [(q["question"].strip(), q["category"], normalise_evidence(q["evidence"]))
            for q in conv_record["qa"] if q.get("evidence")]


def needed_texts(data):
    """Every string a system embeds: each turn's memory text and each question."""
    texts = []
    for c in data:
        texts += [memory_text(t) for _, _, t in turns_of(c["conversation"])]
        texts += [q for q, _, _ in questions(c)]
    return texts


class Recall:
    """Hit-rate recall@1/5/10, per category and overall."""

    def __init__(self):
        self.hits = {k: {} for k in KS}
        self.counts = {}

    def add(self, category, evidence, got):
        """`got`: the dia_ids of the results, best first."""
        for key in (str(category), "overall"):
            self.counts[key] = self.counts.get(key, 0) + 1
            for k in KS:
                self.hits[k][key] = self.hits[k].get(key, 0) + bool(set(got[:k]) & set(evidence))

    def table(self):
        out = {}
        for key in ["overall"] + sorted(k for k in self.counts if k != "overall"):
            out[key] = {str(k): round(self.hits[k][key] / self.counts[key], 4) for k in KS}
            out[key]["n"] = self.counts[key]
            if key != "overall":
                out[key]["name"] = CATEGORIES[int(key)]
        return out
