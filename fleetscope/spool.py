"""The spool: raw results of each run, written atomically as they arrive, until the warehouse has them.

Layout under <data>/spool/:
  <run_id>/run.json           the run's metadata (rewritten when it ends: finished_at, status)
  <run_id>/<host>.json        one per host (result_file): {"host", "status", "message", "ts", "document"}
                              (a run an older version spooled may name it as that version did: result_files)
  rejected/<run_id>/<host>.json + .error.txt   documents the warehouse refused, kept for inspection
A run directory is removed only after its rows are in the warehouse, so a crash loses nothing.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from .files import legacy_safe_name, safe_name, write_atomic, write_json_atomic

RUN_META = "run.json"
TRASH = ".trash-"  # a stored run's folder on its way out (Spool.done)


def result_file(host: str) -> str:
    """The file name of a host's result in its run's folder: safe_name(host), with the hash safe_name gives
    where the name would be the run's own run.json (a host named "run")."""
    return f"{safe_name(host, reserved=frozenset({RUN_META[:-len('.json')]}))}.json"


def result_files(host: str) -> tuple[str, ...]:
    """The names a host's result may have in a run's folder: result_file(host), written by this version, then
    the name versions before 69ee18a gave it (GPU01.json, where this one writes GPU01-<hash>.json), which a run
    left in the spool across an upgrade (killed, a full disk) still has. Only where the two differ."""
    current, legacy = result_file(host), f"{legacy_safe_name(host)}.json"
    # a host named "run" was then written as run.json, which the run's own metadata overwrote: never its file
    return (current,) if legacy in (current, RUN_META) else (current, legacy)


@dataclass
class SpooledRun:
    run_id: str
    path: Path
    meta: dict
    results: list[dict]
    #: (path, why): second files of a host whose result is in results (its file by this version's name)
    duplicates: list[tuple[Path, str]] = field(default_factory=list)


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
        run.json too (its meta is then empty: the caller makes do with the run id), and so does a file that
        holds another host's result than its name is for (result_files). A host whose result is in two files
        (this version's name and an older one's) has the one by this version's name in the results, the
        other in the run's duplicates."""
        path = self.run_dir(run_id)
        unreadable: list[tuple[Path, str]] = []
        duplicates: list[tuple[Path, str]] = []
        by_host: dict[str, dict] = {}  # host -> its result
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
                names = result_files(result["host"])
                if f.name not in names:  # a copy, or an edit: it would be that host's twice
                    raise ValueError(f"the result of host {result['host'][:100]!r} in another host's file")
                result["_path"] = str(f)
                first = by_host.setdefault(result["host"], result)
                if first is not result:  # its file by this version's name wins (sorted: seen in either order)
                    keep, drop = (result, first) if f.name == names[0] else (first, result)
                    by_host[result["host"]] = keep
                    duplicates.append((Path(drop["_path"]), f"a second result of host {result['host'][:100]!r}: "
                                       f"its result is read from {Path(keep['_path']).name}"))
            except (ValueError, UnicodeDecodeError, RecursionError) as e:  # deep nesting: RecursionError
                unreadable.append((f, f"{type(e).__name__}: {str(e)[:300]}"))
        return SpooledRun(run_id, path, meta, list(by_host.values()), duplicates), unreadable

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
