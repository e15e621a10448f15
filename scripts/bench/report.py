"""What every benchmark script does last: print its result and keep it as JSON."""

import json


def write(result, path):
    """Prints `result` as indented JSON and writes it to `path`."""
    text = json.dumps(result, indent=2)
    print(text)
    with open(path, "w") as f:
        f.write(text + "\n")
