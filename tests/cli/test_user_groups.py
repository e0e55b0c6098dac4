"""report.user_groups: the CSV file of each user's group, read by fleetscope.user_groups for the users page's GPU-hours
per group; a file that cannot be used costs the groups (with a warning that says why), never the report."""

from __future__ import annotations

import os

import pytest

from fleetscope import cli
from fleetscope.user_groups import read_user_groups
from tests.reports.conftest import build_fleet
from tests.reports.pages import has_table, table


def read(path):
    said: list[str] = []
    return read_user_groups(path, warn=said.append), said


def test_a_file_with_user_and_group_columns_maps_each_user(tmp_path):
    path = tmp_path / "groups.csv"
    # other columns (getent's uid, a PI's name) are left alone; blank lines are skipped; the columns in any order
    path.write_text("uid,group,user,pi\n1000,vision,alice,Prof. X\n\n1001,nlp,bob,Prof. Y\n   \n1002,vision,carol,\n")
    assert read(path) == ({"alice": "vision", "bob": "nlp", "carol": "vision"}, [])


def test_a_byte_order_mark_spaces_and_quotes_are_not_part_of_the_names(tmp_path):
    path = tmp_path / "groups.csv"
    # Excel's "CSV UTF-8" starts with a BOM, which the first header name would otherwise carry ("\ufeffuser")
    path.write_bytes(b'\xef\xbb\xbf User , Group \r\n alice , "Vision Lab, Prof. X" \r\nbob,nlp\r\n')
    assert read(path) == ({"alice": "Vision Lab, Prof. X", "bob": "nlp"}, [])


@pytest.mark.parametrize("header, missing", [("user,team", "no group column"), ("login,group", "no user column"),
                                             ("user;group", "no user and no group column")])
def test_a_file_without_the_columns_is_not_used_and_says_why(tmp_path, header, missing):
    path = tmp_path / "groups.csv"
    path.write_text(f"\n{header}\nalice,vision\n")
    groups, said = read(path)
    assert groups is None
    names = ", ".join(map(repr, header.split(",")))
    assert said == [f"report.user_groups: {path}: line 2: {missing} in the header ({names}; comma-separated, with "
                    "the columns user and group); the report has no groups"]


def test_a_user_in_two_groups_stays_in_the_first(tmp_path):
    path = tmp_path / "groups.csv"
    path.write_text("user,group\nalice,vision\nbob,nlp\nalice,nlp\nalice,vision\n")
    groups, said = read(path)
    assert groups == {"alice": "vision", "bob": "nlp"}
    # the same group again is no conflict: said once, for line 4
    assert said == [f"report.user_groups: {path}: line 4: user 'alice' is in group 'vision' (line 2) and here in "
                    "'nlp'; 'vision' counts"]


def test_lines_without_a_user_or_a_group_are_left_out_and_named(tmp_path):
    path = tmp_path / "groups.csv"
    path.write_text("user,group\nalice,\n,vision\nbob\ncarol,nlp\n")
    groups, said = read(path)
    assert groups == {"carol": "nlp"}
    assert [s.split(": ", 2)[2] for s in said] == [
        "line 2: no group ('alice,'); the line is left out", "line 3: no user (',vision'); the line is left out",
        "line 4: no group ('bob'); the line is left out"]


def test_a_missing_or_unreadable_or_empty_file_gives_no_groups_and_says_why(tmp_path):
    gone = tmp_path / "gone.csv"
    assert read(gone) == (None, [f"report.user_groups: cannot read {gone}: No such file or directory; "
                                 "the report has no groups"])
    assert read(tmp_path) == (None, [f"report.user_groups: cannot read {tmp_path}: Is a directory; "
                                     "the report has no groups"])
    empty = tmp_path / "empty.csv"
    empty.write_text("\n\n")
    assert read(empty) == (None, [f"report.user_groups: {empty}: empty, no header row with the columns user and "
                                  "group; the report has no groups"])
    empty.write_text("user,group\n")
    assert read(empty) == (None, [f"report.user_groups: {empty}: no user listed under the header; the report has "
                                  "no groups"])
    if os.geteuid() != 0:  # root reads it all the same
        locked = tmp_path / "locked.csv"
        locked.write_text("user,group\nalice,vision\n")
        locked.chmod(0)
        assert read(locked) == (None, [f"report.user_groups: cannot read {locked}: Permission denied; "
                                       "the report has no groups"])


def test_bytes_that_are_not_utf8_do_not_cost_the_other_users(tmp_path):
    path = tmp_path / "groups.csv"
    path.write_bytes(b"user,group\nalice,caf\xe9\nbob,nlp\n")  # Latin-1
    assert read(path) == ({"alice": "caf\ufffd", "bob": "nlp"}, [])


def test_a_file_that_is_no_csv_is_not_used_and_says_where(tmp_path):
    path = tmp_path / "groups.csv"
    path.write_text("user,group\nalice,vision\n" + "x" * 200_000 + "\n")  # over the csv module's field limit
    groups, said = read(path)
    assert groups is None and len(said) == 1
    assert said[0].startswith(f"report.user_groups: {path}: line 3: not a CSV file (field larger than field limit")


def test_a_quote_never_closed_is_an_error_not_the_rest_of_the_file(tmp_path):
    """Review: the lines after alice's unclosed quote were read as her group's name, bob and carol losing theirs
    without a word."""
    path = tmp_path / "groups.csv"
    for text in ('user,group\nalice,"vision\nbob,nlp\ncarol,x\n',
                 'user,group,pi\nalice,vision,"Prof. X\nbob,nlp,Y\ncarol,x,Z\n'):  # in another column too
        path.write_text(text)
        groups, said = read(path)
        assert groups is None and said == [f"report.user_groups: {path}: line 2: a quote is never closed (the lines "
                                           "after it were read as one name); the report has no groups"]


def test_many_bad_lines_are_said_twenty_times_then_counted(tmp_path):
    path = tmp_path / "groups.csv"
    path.write_text("user,group\nalice,vision\n" + "x,\n" * 1000)
    groups, said = read(path)
    assert groups == {"alice": "vision"} and len(said) == 21
    assert said[-1] == f"report.user_groups: {path}: 980 more line(s) left out or in a second group"


# -- `fleetscope report` with report.user_groups ------------------------------------------------------------


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    """The report tests' warehouse: alice (0.17 GPU-h active) and bob (0.08 idle-held) on gpu01."""
    data = tmp_path_factory.mktemp("fleet") / "data"
    build_fleet(data)
    return data


def report(run_fleetscope, fleet, tmp_path, groups_csv: str | None):
    """`fleetscope report` with a settings file in a folder of its own that names groups.csv beside it (the
    command runs from the project folder: the path is the settings file's)."""
    folder = tmp_path / "cfg"
    folder.mkdir(exist_ok=True)
    (folder / "inventory.ini").write_text("[gpu]\ngpu01\n[cpu]\ncpu01\nlost01\n")
    if groups_csv is not None:
        (folder / "groups.csv").write_text(groups_csv)
    (folder / "fleetscope.toml").write_text('[report]\nuser_groups = "groups.csv"\n')
    site = tmp_path / "site"
    proc = run_fleetscope("report", "--config", str(folder / "fleetscope.toml"), "--data", str(fleet),
                          "--out", str(site))
    assert proc.returncode == 0, proc.stderr
    return (site / "users.html").read_text(encoding="utf-8"), proc.stderr, folder / "groups.csv"


def test_report_shows_the_groups_of_the_settings_file(run_fleetscope, fleet, tmp_path):
    html, err, _ = report(run_fleetscope, fleet, tmp_path, "user,group\nalice,vision\ncarol,systems\n")
    assert "warning" not in err, err
    groups = {r["Group"]: r for r in table(html, "groups")}
    assert set(groups) == {"vision", "(no group)"}  # carol has no GPU time; bob is in no group
    assert groups["vision"]["Active GPU-h, 30 d"] == "0.17" and groups["(no group)"]["Idle-held GPU-h, 1 y"] == "0.08"
    assert {r["User"]: r["Group"] for r in table(html, "users")} == {"alice": "vision", "bob": "(no group)"}


def test_a_user_in_two_groups_is_a_warning_and_the_first_group_counts(run_fleetscope, fleet, tmp_path):
    html, err, path = report(run_fleetscope, fleet, tmp_path, "user,group\nalice,vision\nbob,nlp\nbob,vision\n")
    assert (f"warning: report.user_groups: {path}: line 4: user 'bob' is in group 'nlp' (line 3) and here in "
            "'vision'; 'nlp' counts") in err
    assert {r["User"]: r["Group"] for r in table(html, "users")} == {"alice": "vision", "bob": "nlp"}
    assert {r["Group"]: r["Users"] for r in table(html, "groups")} == {"vision": "1", "nlp": "1"}


@pytest.mark.parametrize("groups_csv, why", [
    (None, "cannot read {path}: No such file or directory"),
    ("login,team\nalice,vision\n", "{path}: line 1: no user and no group column in the header ('login', 'team'"),
])
def test_a_groups_file_that_cannot_be_used_costs_the_groups_not_the_report(run_fleetscope, fleet, tmp_path,
                                                                          groups_csv, why):
    html, err, path = report(run_fleetscope, fleet, tmp_path, groups_csv)
    assert f"warning: report.user_groups: {why.format(path=path)}" in err, err
    assert "the report has no groups" in err
    assert not has_table(html, "groups") and "Group" not in table(html, "users")[0]
    assert {r["User"] for r in table(html, "users")} == {"alice", "bob"}  # the rest of the page as always


def test_no_setting_reads_no_file(tmp_path, monkeypatch):
    """The default (""): no groups, and the settings file's folder is not read as a CSV file (a warning)."""
    import reports

    given = {}

    def build_site(con, out_dir, **kwargs):
        given.update(kwargs)
        return out_dir / "index.html"

    monkeypatch.setattr(reports, "build_site", build_site)
    cfg = tmp_path / "fleetscope.toml"
    cfg.write_text("")
    (tmp_path / "data").mkdir()
    assert cli.main(["report", "--config", str(cfg), "--data", str(tmp_path / "data"),
                     "--out", str(tmp_path / "site")]) == 0
    assert given["user_groups"] is None
