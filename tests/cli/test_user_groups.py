"""report.user_groups: the CSV file of each user's group, read by fleetscope.user_groups for the users page's GPU-hours
per group; a file that cannot be used costs the groups (with a warning that says why), never the report."""

from __future__ import annotations

import os

import pytest

from fleetscope.user_groups import read_user_groups


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
