"""Which group (lab, project, PI) each user bills to, for the report's GPU-hours per group (report.user_groups).

A CSV file with a header row naming the columns ``user`` and ``group`` (any others are left alone, so a file
exported with more columns works as it is), one user a line. Like the inventory it is read when the report
is built and never stored: the warehouse keeps what the hosts said, who pays for whom is the lab's to change.
A file that cannot be used costs the report its groups, never the report: every fault is a warning.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Callable, Dict, Optional

from .text import clean_text

COLUMNS = ("user", "group")
#: Warnings about single lines said at most, then how many more: a file of bad lines must not flood cron's mail.
MAX_LINE_WARNINGS = 20


def read_user_groups(path: Path, warn: Callable[[str], None]) -> Optional[Dict[str, str]]:
    """{user: group} from the CSV file at ``path``; None where the file cannot be used (not there, unreadable,
    without a ``user`` or ``group`` column, no user in it), said through ``warn``. Header names and values are
    taken without the spaces around them (header names in any case), a UTF-8 byte order mark (Excel's) is
    dropped and blank lines are skipped. A line without a user or a group is left out, and a user listed under
    a second group stays in the first: each is said with the file and line."""
    try:
        # errors="replace": bytes that are not UTF-8 (a Latin-1 export) show as U+FFFD, as the inventory's do,
        # rather than costing every group; newline="": the csv module reads quoted line breaks itself
        with open(path, encoding="utf-8-sig", errors="replace", newline="") as f:
            reader = csv.reader(f, skipinitialspace=True)  # `alice, "Vision, Prof. X"`: quoted after a space
            try:
                return _read(reader, path, warn)
            except csv.Error as e:  # a field over the csv module's 128 KiB: a file that is not a list of users
                warn(f"report.user_groups: {path}: line {reader.line_num}: not a CSV file ({e}); "
                     "the report has no groups")
    except OSError as e:  # not there, a folder, no permission
        warn(f"report.user_groups: cannot read {path}: {e.strerror or e}; the report has no groups")
    return None


def _read(reader, path: Path, warn: Callable[[str], None]) -> Optional[Dict[str, str]]:
    header = next((row for row in reader if any(cell.strip() for cell in row)), None)
    if header is None:
        warn(f"report.user_groups: {path}: empty, no header row with the columns user and group; "
             "the report has no groups")
        return None
    names = [clean_text(cell).strip().lower() for cell in header]
    missing = [c for c in COLUMNS if c not in names]
    if missing:
        warn(f"report.user_groups: {path}: line {reader.line_num}: no {' and no '.join(missing)} column in the "
             f"header ({', '.join(repr(n) for n in names)}; comma-separated, with the columns user and group); "
             "the report has no groups")
        return None
    at = {c: names.index(c) for c in COLUMNS}  # a header naming a column twice: the first counts
    groups: Dict[str, str] = {}
    first_line: Dict[str, int] = {}
    said = [0]

    def line_warning(message: str) -> None:
        said[0] += 1
        if said[0] <= MAX_LINE_WARNINGS:
            warn(message)

    last_line = reader.line_num
    for row in reader:
        opened, last_line = last_line + 1, reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        user, group = (clean_text(row[at[c]]).strip() if at[c] < len(row) else "" for c in COLUMNS)
        where = f"report.user_groups: {path}: line {reader.line_num}"
        if any("\n" in cell or "\r" in cell for cell in row):  # a quote never closed, in any column
            warn(f"report.user_groups: {path}: line {opened}: a quote is never closed (the lines after it were read "
                 "as one name); the report has no groups")
            return None
        if not user or not group:
            line_warning(f"{where}: no {'user' if not user else 'group'} ({','.join(row)!r}); the line is left out")
        elif user not in groups:
            groups[user], first_line[user] = group, reader.line_num
        elif groups[user] != group:
            line_warning(f"{where}: user {user!r} is in group {groups[user]!r} (line {first_line[user]}) and here in "
                         f"{group!r}; {groups[user]!r} counts")
    if said[0] > MAX_LINE_WARNINGS:
        warn(f"report.user_groups: {path}: {said[0] - MAX_LINE_WARNINGS} more line(s) left out or in a second group")
    if not groups:
        warn(f"report.user_groups: {path}: no user listed under the header; the report has no groups")
        return None
    return groups
