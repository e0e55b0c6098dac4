"""The users page's GPU-hours per group (build_site's user_groups): the user rows summed per group, and nothing of
it without groups."""

from __future__ import annotations

import contextlib
import shutil
from datetime import timedelta

import duckdb
import pytest

from fleetscope.warehouse import connect
from fleetscope.warehouse.ingest import write_table
from reports import build_site
from tests.reports.conftest import NOW
from tests.reports.pages import has_table, table

WINDOWS = ("7 d", "30 d", "1 y")
#: The fleet's alice (GPU 0 active) and bob (GPU 1 idle-held), and two users with older days: carol (none in 7 d,
#: some unmeasured, so the page has those columns) and erin, in no group.
GROUPS = {"alice": "vision", "carol": "vision", "bob": "<i>nlp</i>", "dave": "vision"}  # dave: no GPU time


@pytest.fixture(scope="module")
def users_html(fleet_data, tmp_path_factory):
    base = tmp_path_factory.mktemp("groups")
    data = base / "data"
    shutil.copytree(fleet_data, data)
    day = NOW.replace(hour=0, minute=0, second=0, microsecond=0)
    older = [("carol", 10, 2.0, 0.0, 0.5, 3.6e6), ("carol", 100, 4.0, 1.0, 0.0, 7.2e6), ("erin", 3, 0.0, 0.5, 0.0, 0.0)]
    rows = [{"ts": str(day - timedelta(days=back)), "user": user, "host": "gpu01", "gpu_uuid": "GPU-0", "gpu_index": 0,
             "samples": 12, "active_s": active * 3600, "idle_held_s": held * 3600, "unmeasured_s": unmeasured * 3600,
             "gpu_mem_byte_s": 0.0, "gpu_mem_max_bytes": 0, "energy_j": joules}
            for user, back, active, held, unmeasured, joules in older]
    with contextlib.closing(duckdb.connect()) as con:
        write_table(con, data, "user_gpu_daily", "test-groups", rows)
    with contextlib.closing(connect(data)) as con:
        index = build_site(con, base / "site", now=NOW, user_groups=GROUPS)
    return (index.parent / "users.html").read_text(encoding="utf-8")


def number(cell: str) -> float:
    return float(cell) if cell else 0.0


def test_each_group_is_the_sum_of_its_users(users_html):
    users = table(users_html, "users")
    groups = {g["Group"]: g for g in table(users_html, "groups")}
    assert set(groups) == {"vision", "<i>nlp</i>", "(no group)"}  # dave has no GPU time: vision has no row of his
    columns = [c for c in next(iter(groups.values())) if c not in ("Group", "Users")]
    assert len(columns) == 3 * 4 and "Unmeasured GPU-h, 30 d" in columns  # carol's unmeasured hours: shown
    for name, group in groups.items():
        mine = [u for u in users if u["Group"] == name]
        assert group["Users"] == str(len(mine)), name
        for column in columns:
            # each cell is rounded to its digits (2 below 10): the sum of the rounded user cells is that close
            assert abs(number(group[column]) - sum(number(u[column]) for u in mine)) <= 0.006 * len(mine), (
                name, column, group[column], [u[column] for u in mine])
    vision = groups["vision"]
    # alice's 600 s active in each window; carol's 2 h at 10 days back, 4 h (and 1 h held) at 100
    assert [vision["Users"], *(vision[f"Active GPU-h, {w}"] for w in WINDOWS)] == ["2", "0.17", "2.17", "6.17"]
    assert [vision["Idle-held GPU-h, 1 y"], vision["Unmeasured GPU-h, 7 d"], vision["kWh, 1 y"]] == [
        "1.00", "0.00", "3.07"]
    assert groups["(no group)"]["Idle-held GPU-h, 7 d"] == "0.50"  # erin, whom the mapping does not name


def test_groups_are_ordered_like_the_users_and_named_as_text(users_html):
    assert [g["Group"] for g in table(users_html, "groups")] == ["vision", "(no group)", "<i>nlp</i>"]  # 30 d hours
    assert "&lt;i&gt;nlp&lt;/i&gt;" in users_html and "<i>nlp" not in users_html
    assert users_html.index('id="groups"') < users_html.index('class="sortable filterable users"')
    assert '<table id="groups" class="sortable filterable groups">' in users_html


def test_the_user_table_has_each_users_group(users_html):
    users = table(users_html, "users")
    assert list(users[0])[:2] == ["User", "Group"]
    assert {u["User"]: u["Group"] for u in users} == {
        "alice": "vision", "carol": "vision", "bob": "<i>nlp</i>", "erin": "(no group)"}
    assert {u["User"]: u["Active GPU-h, 7 d"] for u in users}["carol"] == ""  # a window without data stays empty


def test_the_top_gpu_processes_say_their_users_group(users_html):
    assert [(p["User"], p["Group"]) for p in table(users_html, "top-processes")] == [
        ("alice", "vision"), ("bob", "<i>nlp</i>")]


def test_without_groups_the_page_has_none(fleet_site):
    html = (fleet_site / "users.html").read_text(encoding="utf-8")
    assert not has_table(html, "groups") and "per group" not in html and "(no group)" not in html
    assert "Group" not in table(html, "top-processes")[0]
    assert list(table(html, "users")[0]) == ["User", *(f"{what}, {w}" for w in WINDOWS for what in (
        "Active GPU-h", "Idle-held GPU-h", "kWh")), "Hosts, 30 d", "Last day"]


def test_an_empty_mapping_puts_everyone_in_no_group(fleet_data, tmp_path):
    """build_site takes {} as groups given (every user in none); the CLI passes None for a file without users."""
    with contextlib.closing(connect(fleet_data)) as con:
        index = build_site(con, tmp_path / "site", now=NOW, user_groups={})
    html = (index.parent / "users.html").read_text(encoding="utf-8")
    assert [(g["Group"], g["Users"]) for g in table(html, "groups")] == [("(no group)", "2")]
