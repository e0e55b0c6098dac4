"""Benchmarks: `make bench` (python -m benchmarks). Numbers are ratios against a baseline run in the same
process, so they compare across machines; raw seconds are printed beside them."""

import json
from pathlib import Path

OUT = Path(__file__).resolve().parent / "out"  # not committed


def write_result(name: str, data) -> Path:
    """<OUT>/<name>: `data` as indented JSON; says where."""
    dest = OUT / name
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(json.dumps(data, indent=2) + "\n")
    print(f"written to {dest}")
    return dest
