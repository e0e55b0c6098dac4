"""File names and embedded JSON for host-provided strings."""

from __future__ import annotations

import json

import pytest

from reports.safe import json_for_html, plotly_text, slugify


@pytest.mark.parametrize("name", ["gpu01", "node-1.lab", "a_b"])
def test_plain_host_names_are_kept(name):
    assert slugify(name) == name


@pytest.mark.parametrize("name", ["../../etc/passwd", "a/b", "..", ".hidden", "", "<script>", "Node1",
                                  "x" * 300])
def test_other_names_become_safe_distinct_file_names(name):
    slug = slugify(name)
    assert slug and "/" not in slug and not slug.startswith(".") and len(slug) <= 80
    assert set(slug) <= set("abcdefghijklmnopqrstuvwxyz0123456789._-")


def test_names_that_differ_only_in_unsafe_characters_or_case_do_not_collide():
    names = ["a b", "a_b", "a/b", "A_b", "a:b"]
    assert len({slugify(n) for n in names}) == len(names)


def test_json_for_html_cannot_close_the_script_or_break_a_line():
    value = {"command": "</script><!-- \u2028\u2029 & '\"", "nan": float("nan")}
    text = str(json_for_html(value))
    for raw in ("</", "<!--", "\u2028", "\u2029", "&"):
        assert raw not in text
    assert json.loads(text) == {"command": value["command"], "nan": None}


def test_plotly_text_shows_markup_literally():
    assert plotly_text("<b>x</b> & y") == "&lt;b&gt;x&lt;/b&gt; &amp; y"


@pytest.mark.parametrize("name", ["con", "NUL", "com1", "lpt9", "aux.lab"])
def test_names_windows_reserves_for_devices_get_a_suffix(name):
    """hosts/con.html cannot be copied to Windows or an SMB share."""
    slug = slugify(name)
    assert slug.split(".")[0] not in ("con", "nul", "com1", "lpt9", "aux") and slug.startswith("_" + name.lower())
