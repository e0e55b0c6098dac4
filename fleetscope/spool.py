"""The spool: raw results of each run, written atomically as they arrive, until the warehouse has them.

Layout under <data>/spool/:
  <run_id>/run.json           the run's metadata (rewritten when it ends: finished_at, status)
  <run_id>/<host>.json        one per host (result_file): {"host", "status", "message", "ts", "document"}
  rejected/<run_id>/<host>.json + .error.txt   documents the warehouse refused, kept for inspection
A run directory is removed only after its rows are in the warehouse, so a crash loses nothing.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from .files import safe_name, write_atomic, write_json_atomic

RUN_META = "run.json"
TRASH = ".trash-"  # a stored run's folder on its way out (Spool.done)


def result_file(host: str) -> str:
    """The file name of a host's result in its run's folder: safe_name(host), with the hash safe_name gives
    where the name would be the run's own run.json (a host named "run")."""
    return f"{safe_name(host, reserved=frozenset({RUN_META[:-len('.json')]}))}.json"


@dataclass
class SpooledRun:
    run_id: str
    path: Path
    meta: dict
    results: list[dict]


class Spool:
    def __init__(self, data_dir: Path):
        self.root = Path(data_dir) / "spool"

    def run_dir(self, run_id: str) -> Path:
        return self.root / run_id

    def start_run(self, run_id: str, meta: dict) -> None:
        write_json_atomic(self.run_dir(run_id) / RUN_META, meta)

    def finish_run(self, run_id: str, meta: dict) -> None:
        write_json_atomic(self.run_dir(run_id) / RUN_META, meta)

    def put(self, run_id: str, result: dict) -> Path:
        path = self.run_dir(run_id) / result_file(result["host"])
        write_json_atomic(path, result)
        return path

    def pending(self) -> list[str]:
        """Run ids waiting to be ingested, oldest first (run ids sort by start time)."""
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir()  # not ".trash-<id>", a stored run on its way out
                      if p.is_dir() and not p.name.startswith(".") and (p / RUN_META).is_file())

    def read(self, run_id: str) -> tuple[SpooledRun, list[tuple[Path, str]]]:
        """The run and its host results; files that do not parse come back as (path, error), the run's own
        run.json too (its meta is then empty: the caller makes do with the run id)."""
        path = self.run_dir(run_id)
        results, unreadable = [], []
        try:
            meta = json.loads((path / RUN_META).read_text(encoding="utf-8"))
            if not isinstance(meta, dict):
                raise ValueError(f"expected an object, got {type(meta).__name__}")
        except (ValueError, UnicodeDecodeError, RecursionError) as e:
            unreadable.append((path / RUN_META, f"{type(e).__name__}: {e}"))
            meta = {}
        for f in sorted(path.glob("*.json")):
            if f.name == RUN_META:
                continue
            try:
                result = json.loads(f.read_text(encoding="utf-8"))
                if not isinstance(result, dict) or not isinstance(result.get("host"), str):
                    raise ValueError("not a spooled host result")
                if result_file(result["host"]) != f.name:  # a copy, or an edit: it would be that host's twice
                    raise ValueError(f"the result of host {result['host'][:100]!r} in another host's file")
                result["_path"] = str(f)
                results.append(result)
            except (ValueError, UnicodeDecodeError, RecursionError) as e:  # deep nesting: RecursionError
                unreadable.append((f, f"{type(e).__name__}: {str(e)[:300]}"))
        return SpooledRun(run_id, path, meta, results), unreadable

    def reject(self, run_id: str, source: Path, reason: str) -> Path:
        """Keep a refused document aside, with why, for a person to look at."""
        dest_dir = self.root / "rejected" / run_id
        dest_dir.mkdir(parents=True, exist_ok=True)
        dest = dest_dir / source.name
        shutil.copyfile(source, dest)
        write_atomic(dest.with_suffix(".error.txt"), (reason + "\n").encode("utf-8"))
        return dest

    def done(self, run_id: str, keep: bool = False) -> None:
        path = self.run_dir(run_id)
        if keep:
            dest = self.root / "done" / run_id
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.rmtree(dest, ignore_errors=True)
            path.rename(dest)
        else:  # out of pending()'s sight at once: a kill in the middle of the rmtree leaves no run half gone
            trash = self.root / f"{TRASH}{run_id}"
            try:
                path.rename(trash)
            except FileNotFoundError:
                return
            shutil.rmtree(trash, ignore_errors=True)

    def sweep_trash(self) -> None:
        """Finish removing the runs a killed process was removing (done)."""
        if self.root.is_dir():
            for trash in self.root.glob(f"{TRASH}*"):
                shutil.rmtree(trash, ignore_errors=True)
