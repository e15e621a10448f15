"""Texts for the HTTP benchmark (scripts/bench.sh): distinct sentences of
common English words, seeded by a number so every run writes the same ones.
Far enough apart that none is a near-duplicate of another (cosine < 0.95
under all-MiniLM-L6-v2), so no memory is merged away once embedded."""
import random

WORDS = """time person year way day thing man world life hand part child eye woman place work week case point
government company number group problem fact be have do say get make go know take see come think look want
give use find tell ask seem feel try leave call good new first last long great little own other old right big
high different small large next early young important few public bad same able garden dinner painting camping
concert sister brother mother father friend school teacher student book story music song film game team city
river mountain forest beach island road car train bus plane ship kitchen bread coffee tea apple orange cheese
doctor nurse hospital office market shop money bank letter phone computer picture colour morning evening night
summer winter spring autumn rain snow wind sun moon star animal dog cat bird horse fish flower tree grass stone
""".split()


def sentence(seed: int, words: int) -> str:
    rng = random.Random(seed)
    return " ".join(rng.choice(WORDS) for _ in range(words)).capitalize() + "."
