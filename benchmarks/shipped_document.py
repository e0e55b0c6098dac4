"""The collector as fleetscope ships it, run on this machine: the document from the bundle with the pruned
pynvml and from one with the whole (lightened) pynvml, and whether they agree. On a machine with NVIDIA GPUs
this is the check that pruning left out nothing an NVML read needs (benchmarks/gpu_host.sh runs it); the
tests check the same statically, and with no driver, only the library loader.

    python -m benchmarks.shipped_document OUTDIR [HOST_PYTHON]

Writes OUTDIR/document-shipped.json (pruned) and OUTDIR/document-unpruned.json; prints what differs in
field names, value types or errors, and exits 1 if anything does.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from fleetscope.stage import STUB, bundle_of, collector_sources, payload


def document(python: str, prune: bool) -> dict:
    bundle = bundle_of(collector_sources(), pythons=[], prune=prune)
    done = subprocess.run([python, "-c", STUB], input=payload({"top_n": 15, "timeout": 30}, bundle),
                          capture_output=True, timeout=120)
    if done.returncode != 0 or not done.stdout.strip():
        raise SystemExit(f"{python}: exit status {done.returncode}: {done.stderr.decode(errors='replace')[-2000:]}")
    return json.loads(done.stdout)["document"]


def shape(value, path=""):
    """{path: type name} of every leaf, lists by their first item (GPUs: each device)."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            out.update(shape(item, f"{path}.{key}"))
        return out
    if isinstance(value, list):
        if path.endswith(".devices"):
            out = {}
            for i, item in enumerate(value):
                out.update(shape(item, f"{path}[{i}]"))
            return out
        return {path: "list"}
    return {path: None if value is None else type(value).__name__}


def main(argv=None) -> int:
    args = sys.argv[1:] if argv is None else argv
    out = Path(args[0])
    python = args[1] if len(args) > 1 else "/usr/bin/python3"
    out.mkdir(parents=True, exist_ok=True)
    pruned, whole = document(python, True), document(python, False)
    (out / "document-shipped.json").write_text(json.dumps(pruned, indent=1))
    (out / "document-unpruned.json").write_text(json.dumps(whole, indent=1))
    a, b = shape(pruned), shape(whole)
    volatile = (".time.", ".processes.", ".load.", ".memory.", ".cpu.", ".network.", ".disks.")
    differ = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k) and not any(v in k for v in volatile))
    gpus = pruned.get("gpus", {})
    errors = pruned.get("errors", []) + [e for d in gpus.get("devices", []) for e in d.get("errors", [])]
    print(f"shipped (pruned pynvml): {len(gpus.get('devices', []))} GPU(s), available {gpus.get('available')}, "
          f"reason {gpus.get('reason')!r}, errors {errors}")
    print(f"fields whose type differs from the unpruned bundle's: {differ or 'none'}")
    return 1 if differ or errors else 0


if __name__ == "__main__":
    sys.exit(main())
