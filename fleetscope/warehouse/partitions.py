"""The warehouse's files: which day partitions exist, and swapping a day's files as a whole.

A table is <data>/<table>/date=YYYY-MM-DD/*.parquet. Work on a day is prepared in a hidden folder beside it
(`.new-date=D`) and swapped in with two renames; the views only read `date=*` folders, so a half-written
folder is never read, and `recover()` finishes or undoes a swap that a crash interrupted.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
from pathlib import Path

from ..files import fsync_path, remove_stale
from ..lock import Busy, admin_actions_lock

NEW, OLD = ".new-", ".old-"


def day_dirs(data_dir: Path, table: str) -> dict[dt.date, Path]:
    root = Path(data_dir) / table
    if not root.is_dir():
        return {}
    out = {}
    for p in root.iterdir():
        if p.is_dir() and p.name.startswith("date="):
            try:
                out[dt.date.fromisoformat(p.name[5:])] = p
            except ValueError:
                continue
    return dict(sorted(out.items()))


def day_dir(data_dir: Path, table: str, day: dt.date) -> Path:
    return Path(data_dir) / table / f"date={day.isoformat()}"


def parquet_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.parquet")) if folder.is_dir() else []


def newest_mtime(folder: Path) -> float:
    return max((f.stat().st_mtime for f in parquet_files(folder)), default=0.0)


def staging_dir(final: Path) -> Path:
    """An empty hidden folder to build the new content of `final` in."""
    new = final.with_name(NEW + final.name)
    shutil.rmtree(new, ignore_errors=True)
    new.mkdir(parents=True)
    return new


def swap_in(final: Path) -> None:
    """Replace `final` with its staging folder: readers see the old day or the new one, never a mix."""
    new, old = final.with_name(NEW + final.name), final.with_name(OLD + final.name)
    for f in new.iterdir():  # on the disk before the old day's files go: a power cut must find one or the other
        fsync_path(f)
    fsync_path(new)
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        os.rename(final, old)
    os.rename(new, final)
    fsync_path(final.parent)
    shutil.rmtree(old, ignore_errors=True)


def remove_day(folder: Path) -> None:
    """Delete a day folder: renamed out of the views' sight first, so a crash leaves no half-deleted day."""
    if not folder.exists():
        return
    old = folder.with_name(OLD + folder.name)
    shutil.rmtree(old, ignore_errors=True)
    os.rename(folder, old)
    shutil.rmtree(old, ignore_errors=True)


def recover(data_dir: Path) -> list[str]:
    """Finish or undo swaps a crash interrupted; returns what was done, for the log."""
    done: list[str] = []
    for table in Path(data_dir).iterdir() if Path(data_dir).is_dir() else []:
        if not table.is_dir() or table.name.startswith("."):
            continue
        if table.name != "admin_actions":
            recover_table(table, done)
            continue
        try:  # written without the data lock: a record must not land in a day being put back
            with admin_actions_lock(data_dir):
                recover_table(table, done)
        except Busy:
            pass  # a record held it a minute: the rollup's compaction recovers the table first, under the lock
    return done


def recover_table(table: Path, done: list[str]) -> None:
    """recover() for one table's folder."""
    for p in table.iterdir():
        if p.name.startswith(OLD):
            final = p.with_name(p.name[len(OLD):])
            new = p.with_name(NEW + final.name)
            if final.exists() and new.exists():
                # crashed between the two renames, and a writer without the data lock (`fleetscope admin`)
                # has since made the day again for its own file: that file joins the new day. (The other way to
                # have all three, a finished swap whose old folder was left and a later staging cut short, comes
                # to the same: the day's own files, its compaction's among them, replace the staging's.)
                for f in parquet_files(final):
                    os.replace(f, new / f.name)
                shutil.rmtree(final)
                os.rename(new, final)
                shutil.rmtree(p)
                done.append(f"finished swapping {final}, with the files written since")
                continue
            if final.exists():
                shutil.rmtree(p)  # the swap had finished
            elif new.exists():
                os.rename(new, final)  # crashed between the two renames: finish it
                shutil.rmtree(p)
                done.append(f"finished swapping {final}")
                continue
            else:
                shutil.rmtree(p)  # a deletion was under way: finish it
            done.append(f"cleaned {p}")
    for p in table.iterdir():
        if p.name.startswith(NEW):
            shutil.rmtree(p)  # never swapped in: the work is redone
            done.append(f"dropped unfinished {p}")


#: A temp file untouched this long is a killed process's, not a live write's.
STALE_TEMP_S = 600


def sweep_temp(data_dir: Path, now: float | None = None) -> int:
    """Delete temp files a killed process left (atomic writes that never reached their rename), once they are
    STALE_TEMP_S old: not every writer holds the data lock (`fleetscope admin` records its actions without
    it, while a collect may run), so a young one may be a live write. Call it holding the data lock (the
    scratch folders are the lock holder's). Returns how many went."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        return 0
    patterns = ("*/date=*/.rows.*.jsonl", "*/date=*/.*.parquet.tmp", "spool/*/.*.tmp", ".*.tmp")
    gone = remove_stale([f for pattern in patterns for f in data_dir.glob(pattern)], STALE_TEMP_S, now=now)
    for trial in data_dir.glob(".trial-*"):  # ingest's scratch folders (ingest._unwritable_hosts)
        shutil.rmtree(trial, ignore_errors=True)
        gone += 1
    return gone
