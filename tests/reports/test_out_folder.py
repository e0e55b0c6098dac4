"""Which folders a build may replace: empty ones and sites fleetscope wrote, never anything else."""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path

import pytest

import reports.site
from fleetscope.warehouse import connect
from reports import build_site
from reports.site import MARKER, NotASiteFolder
from tests.reports.conftest import NOW


def build(data_dir: Path, out: Path) -> Path:
    with contextlib.closing(connect(data_dir)) as con:
        return build_site(con, out, now=NOW)


def snapshot(folder: Path) -> dict:
    return {str(p.relative_to(folder)): p.read_bytes() if p.is_file() else None for p in folder.rglob("*")}


def old_site(fleet_data: Path, out: Path) -> Path:
    """A site as versions before the marker wrote it."""
    build(fleet_data, out)
    (out / MARKER).unlink()
    return out


def test_every_site_carries_the_marker(fleet_site):
    assert (fleet_site / MARKER).is_file()


def test_a_foreign_folder_is_refused_and_left_as_it_is(fleet_data, tmp_path):
    victim = tmp_path / "victim"
    (victim / "sub").mkdir(parents=True)
    (victim / "important.txt").write_text("precious")
    before = snapshot(victim)
    with pytest.raises(NotASiteFolder) as refused:
        build(fleet_data, victim)
    assert isinstance(refused.value, OSError) and refused.value.filename == str(victim)
    assert "no .fleetscope-site file" in refused.value.strerror
    assert snapshot(victim) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["victim"]  # not even a lock or a staging folder


@pytest.mark.parametrize("extra", ["index.html", "notes.txt", "hosts/notes.txt", "data/db.sqlite", "assets/"])
def test_a_folder_that_is_not_only_an_old_site_is_refused(fleet_data, tmp_path, extra):
    folder = tmp_path / "www"
    if extra == "index.html":  # a random folder with an index.html is no site
        folder.mkdir()
        (folder / "index.html").write_text("<h1>my page</h1>")
    else:  # an old site with a file of someone else's in it: replacing it would lose that file
        old_site(fleet_data, folder)
        target = folder / extra
        target.parent.mkdir(exist_ok=True)
        target.mkdir() if extra.endswith("/") else target.write_text("mine")
    before = snapshot(folder)
    with pytest.raises(NotASiteFolder):
        build(fleet_data, folder)
    assert snapshot(folder) == before


def test_the_data_folder_is_refused(fleet_data, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(fleet_data, data)
    assert (data / "fleet.duckdb").is_file()
    before = snapshot(data)
    with pytest.raises(NotASiteFolder, match="data folder"):
        build(data, data)
    with pytest.raises(NotASiteFolder, match="inside fleetscope's data folder"):
        build(data, data / "site")  # inside it
    with pytest.raises(NotASiteFolder, match="inside fleetscope's data folder"):
        build(data, data / "sub" / "site")
    assert snapshot(data) == before


def test_a_folder_holding_a_warehouse_is_refused_even_with_the_marker(fleet_data, tmp_path):
    spool_only = tmp_path / "fresh-data"  # a data folder before its first ingest: only the spool
    (spool_only / "spool" / "incoming").mkdir(parents=True)
    (spool_only / MARKER).write_text("")
    with pytest.raises(NotASiteFolder, match="data folder"):
        build(fleet_data, spool_only)
    assert (spool_only / "spool" / "incoming").is_dir()

    site = tmp_path / "site"  # a site with the warehouse put inside it (data_dir = site/data)
    build(fleet_data, site)
    (site / "data" / "fleet.duckdb").write_bytes(b"warehouse")
    with pytest.raises(NotASiteFolder, match="holds fleetscope's data"):
        build(fleet_data, site)
    assert (site / "data" / "fleet.duckdb").read_bytes() == b"warehouse"


def test_a_parent_of_the_data_folder_is_refused(fleet_data, tmp_path):
    parent = tmp_path / "srv"
    shutil.copytree(fleet_data, parent / "data")
    before = snapshot(parent)
    with pytest.raises(NotASiteFolder):
        build(parent / "data", parent)
    assert snapshot(parent) == before


def test_an_old_site_without_the_marker_is_replaced(fleet_data, tmp_path):
    site = old_site(fleet_data, tmp_path / "site")
    (site / "hosts" / "gone01.html").write_text("a host no longer in the fleet")
    build(fleet_data, site)
    assert (site / MARKER).is_file()
    assert not (site / "hosts" / "gone01.html").exists()
    assert (site / "hosts" / "gpu01.html").is_file()


def test_the_first_versions_site_is_replaced(fleet_data, tmp_path):
    site = old_site(fleet_data, tmp_path / "site")  # index, hosts/, plotly.min.js and style.css only
    for name in ("users.html", "problems.html", "report.js"):
        (site / name).unlink()
    shutil.rmtree(site / "data")
    build(fleet_data, site)
    assert (site / MARKER).is_file() and (site / "users.html").is_file()


def test_a_marked_site_is_replaced_whole(fleet_data, tmp_path):
    site = tmp_path / "site"
    build(fleet_data, site)
    (site / "left-over.txt").write_text("written by hand in a site")
    build(fleet_data, site)
    assert not (site / "left-over.txt").exists()
    assert (site / MARKER).is_file() and (site / "index.html").is_file()


def test_an_empty_folder_is_used(fleet_data, tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    assert build(fleet_data, site) == site / "index.html"
    assert (site / MARKER).is_file() and (site / "index.html").is_file()


def test_a_folder_that_changed_during_the_build_is_left_as_it_is(fleet_data, tmp_path, monkeypatch):
    site = tmp_path / "site"
    site.mkdir()
    render = reports.site._render

    def render_while_someone_writes(*args, **kwargs):
        render(*args, **kwargs)
        (site / "important.txt").write_text("precious")

    monkeypatch.setattr(reports.site, "_render", render_while_someone_writes)
    with pytest.raises(NotASiteFolder):
        build(fleet_data, site)
    assert sorted(p.name for p in site.iterdir()) == ["important.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".site.lock", "site"]  # the staging folder is gone


def test_the_command_refuses_a_foreign_folder_with_one_line(fleet_data, run_fleetscope, tmp_path):
    victim = tmp_path / "victim"
    (victim / "sub").mkdir(parents=True)
    (victim / "important.txt").write_text("precious")
    config = tmp_path / "fleetscope.toml"
    config.write_text("")
    proc = run_fleetscope("report", "--config", str(config), "--data", str(fleet_data), "--out", str(victim))
    assert proc.returncode != 0
    assert (victim / "important.txt").read_text() == "precious" and (victim / "sub").is_dir()
    assert "Traceback" not in proc.stderr
    assert "is not a site fleetscope wrote (no .fleetscope-site file in it)" in proc.stderr
    assert f"({victim})" in proc.stderr

    proc = run_fleetscope("report", "--config", str(config), "--data", str(fleet_data), "--out", str(fleet_data))
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "looks like fleetscope's data folder" in proc.stderr
    assert (fleet_data / "fleet.duckdb").is_file()
