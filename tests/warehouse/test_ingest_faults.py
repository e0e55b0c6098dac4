"""One bad item in the spool costs only itself: every other host, and every other run, is stored.

Real spool files, a real DuckDB and real Parquet; the faults are what a host, a disk or a person can leave."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest

from fleetscope.spool import Spool
from fleetscope.warehouse import IngestError, ingest_pending
from fleetscope.warehouse import ingest as ingest_module
from tests import docfactory as f
from tests.warehouse.test_ingest import count as rows

T0 = datetime(2026, 11, 23, 9, 0)


def good_and(bad: dict, at: datetime = T0) -> list[dict]:
    return [f.ok("good01", at, f.document("good01", at, gpus=[f.gpu(0, util=40)])), bad]


def bad_host(at: datetime = T0, **changes) -> dict:
    """A result for host "bad01" whose document has ``changes`` applied (dotted paths)."""
    result = f.ok("bad01", at, f.document("bad01", at, gpus=[f.gpu(0, util=10)]))
    for path, value in changes.items():
        where = result
        *parents, last = path.split(".")
        for key in parents:
            where = where[int(key)] if isinstance(where, list) else where[key]
        where[last] = value
    return result


def assert_only_bad_refused(data, report, why: str):
    assert rows(data, "SELECT host, status FROM host_status ORDER BY host") == [("bad01", "failed"),
                                                                                 ("good01", "ok")]
    assert rows(data, "SELECT host, utilization_gpu_pct FROM gpu_samples") == [("good01", 40.0)]
    assert rows(data, "SELECT host FROM host_samples") == [("good01",)]
    assert rows(data, "SELECT hosts_total, hosts_ok, hosts_failed FROM runs") == [(2, 1, 1)]
    (message,) = rows(data, "SELECT message FROM host_status WHERE host = 'bad01'")[0]
    assert why in message
    (run_id, host), = report.refused
    assert host == "bad01" and why in report.refused[(run_id, host)]
    kept = data / "spool" / "rejected" / run_id
    assert (kept / "bad01.json").is_file() and why in (kept / "bad01.error.txt").read_text()
    assert not Spool(data).pending()


@pytest.mark.parametrize("changes, why", [
    # NVML's "not available" (2**32 - 1) as a utilization: stored, it broke every report's cast
    ({"document.gpus.devices.0.utilization_gpu_pct": 4294967295}, "must be <= 100"),
    ({"status": "weird"}, "'status'"),
    ({"document.time.collected_at": "0001-01-01T00:00:00Z"}, "not a time between 1970 and 2200"),
    # the first time past the last year the warehouse takes (rows.LAST_YEAR), refused naming its field
    ({"document.time.collected_at": "2201-01-01T00:00:00Z"},
     "field 'time.collected_at': not a time between 1970 and 2200"),
])
def test_a_document_the_warehouse_cannot_hold_is_refused_alone(tmp_path, changes, why):
    f.spool_run(tmp_path, T0, good_and(bad_host(**changes)))
    report = ingest_pending(tmp_path)
    assert_only_bad_refused(tmp_path, report, why)


def test_a_time_in_the_last_year_the_warehouse_takes_is_stored(tmp_path):
    """Times from 1970 to 2200 are taken, 2200 included (its last second): only later ones are refused."""
    result = bad_host(**{"document.time.collected_at": "2200-12-31T23:59:59Z"})
    f.spool_run(tmp_path, T0, good_and(result))
    assert not ingest_pending(tmp_path).refused
    assert rows(tmp_path, "SELECT host_ts FROM host_samples WHERE host = 'bad01'") == [
        (datetime(2200, 12, 31, 23, 59, 59),)]


def test_rows_duckdb_refuses_cost_only_their_host_whatever_the_checks_let_through(tmp_path, monkeypatch):
    """The document checks are the first line; the second is DuckDB itself: a host whose rows it refuses to
    write is found, kept aside and marked failed, and the run is written again without it, leaving no file of
    the failed attempt behind."""
    real = ingest_module.host_rows

    def with_a_hole_in_the_checks(result, run_id):
        out = real(result, run_id)
        if result["host"] == "bad01":  # a value no check caught: a GPU index that is not a number
            out["gpu_samples"][0]["gpu_index"] = "not a number"
        return out

    monkeypatch.setattr(ingest_module, "host_rows", with_a_hole_in_the_checks)
    f.spool_run(tmp_path, T0, good_and(bad_host()))
    report = ingest_pending(tmp_path)
    assert_only_bad_refused(tmp_path, report, "the warehouse cannot store it: gpu_samples:")
    assert rows(tmp_path, "SELECT host FROM hosts ORDER BY host") == [("good01",)]
    assert not list(tmp_path.glob(".trial-*")) and not list(tmp_path.glob("*/date=*/.*"))


def test_results_that_do_not_parse_still_give_their_host_a_status(tmp_path):
    at = T0
    run_id = f.spool_run(tmp_path, at, [f.ok("good01", at, f.document("good01", at)),
                                        f.ok("cut.short", at, f.document("cut.short", at)),
                                        f.ok("deep01", at, f.document("deep01", at)),
                                        f.ok("lost01", at, f.document("lost01", at))])
    folder = tmp_path / "spool" / run_id
    text = (folder / "cut.short.json").read_text()
    (folder / "cut.short.json").write_text(text[:300])  # a disk that filled up under a copy
    (folder / "deep01.json").write_text("[" * 100_000)  # nested past what the JSON parser recurses
    (folder / "lost01.json").unlink()  # the run was killed before this host's result
    report = ingest_pending(tmp_path)
    status = dict((h, (s, m)) for h, s, m in rows(tmp_path, "SELECT host, status, message FROM host_status"))
    assert status["good01"] == ("ok", None)
    assert status["cut.short"][0] == "failed" and "rejected spool file cut.short.json" in status["cut.short"][1]
    assert status["deep01"][0] == "failed" and "RecursionError" in status["deep01"][1]
    assert status["lost01"] == ("failed", "no result was spooled for this host (the run ended before it answered)")
    assert rows(tmp_path, "SELECT hosts_total, hosts_ok, hosts_failed FROM runs") == [(4, 1, 3)]
    assert {h for _, h in report.refused} == {"cut.short", "deep01"}
    assert (tmp_path / "spool" / "rejected" / run_id / "cut.short.json").read_text() == text[:300]


def test_a_result_with_an_unreadable_time_is_stored_at_the_runs_start(tmp_path):
    result = f.ok("bad01", T0, {"not": "a document"})
    result["ts"] = "yesterday"
    f.spool_run(tmp_path, T0, good_and(result))
    report = ingest_pending(tmp_path)
    assert rows(tmp_path, "SELECT host, status, ts FROM host_status ORDER BY host") == [
        ("bad01", "failed", T0), ("good01", "ok", T0)]
    assert len(report.refused) == 1


@pytest.mark.parametrize("damage", ['{"run_id": ', "[1, 2]", "\xff\xfe"])
def test_a_damaged_run_json_costs_nothing_but_itself(tmp_path, damage):
    at = T0 + timedelta(minutes=7, seconds=3)
    run_id = f.spool_run(tmp_path, at, good_and(bad_host(at)))
    (tmp_path / "spool" / run_id / "run.json").write_bytes(damage.encode("latin-1"))
    report = ingest_pending(tmp_path)
    assert rows(tmp_path, "SELECT host, status FROM host_status ORDER BY host") == [("bad01", "ok"),
                                                                                     ("good01", "ok")]
    # the run's start comes from its id; what run.json said (finish, inventory) is lost with it
    assert rows(tmp_path, "SELECT run_id, started_at, finished_at, hosts_total FROM runs") == [
        (run_id, at, None, 2)]
    assert any("unreadable run.json" in w for w in report.warnings)
    assert (tmp_path / "spool" / "rejected" / run_id / "run.json").read_bytes() == damage.encode("latin-1")


def test_a_run_that_cannot_be_written_stays_in_the_spool_and_the_next_runs_are_stored(tmp_path):
    first = f.spool_run(tmp_path, T0, good_and(bad_host()))
    second_day = T0 + timedelta(days=1)
    second = f.spool_run(tmp_path, second_day, good_and(bad_host(second_day), second_day))
    (tmp_path / "host_status").mkdir()
    (tmp_path / "host_status" / "date=2026-11-23").write_text("a file where the day's folder goes")
    with pytest.raises(IngestError) as failed:
        ingest_pending(tmp_path)
    assert f"run {first}:" in str(failed.value) and "stay in" in str(failed.value)
    assert failed.value.report.runs == [second]
    assert not list(tmp_path.glob(f"*/date=*/{first}.parquet"))  # nothing half-written shows in the tables
    assert rows(tmp_path, "SELECT run_id FROM runs") == [(second,)]
    assert Spool(tmp_path).pending() == [first]
    (tmp_path / "host_status" / "date=2026-11-23").unlink()  # the cause fixed: the next ingest stores it
    assert ingest_pending(tmp_path).runs == [first]
    assert sorted(rows(tmp_path, "SELECT run_id FROM runs")) == sorted([(first,), (second,)])


def test_a_damaged_catalog_file_is_rebuilt_and_kept_aside(tmp_path):
    tmp_path = tmp_path / "padlock"  # a path with "lock" in it: not taken for DuckDB's lock conflict
    f.spool_run(tmp_path, T0, good_and(bad_host()))
    ingest_pending(tmp_path)
    (tmp_path / "fleet.duckdb").write_bytes(b"not a database, not any more")
    f.spool_run(tmp_path, T0 + timedelta(minutes=5), good_and(bad_host()))
    report = ingest_pending(tmp_path)
    assert any("moved to fleet.duckdb.damaged-" in w and "rebuilt" in w for w in report.warnings)
    assert [p.read_bytes() for p in tmp_path.glob("fleet.duckdb.damaged-*")] == [b"not a database, not any more"]
    import duckdb

    con = duckdb.connect(str(tmp_path / "fleet.duckdb"), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM runs").fetchone()[0] == 2
    finally:
        con.close()


def test_a_damaged_parquet_file_costs_its_own_rows_only(tmp_path):
    """A file the disk damaged: a table the run does not read is no obstacle; one it reads (runs) stops the
    storing with the file named, and the run waits in the spool until the file is moved away."""
    f.spool_run(tmp_path, T0, good_and(bad_host()))
    ingest_pending(tmp_path)
    (samples,) = tmp_path.glob("gpu_samples/date=*/*.parquet")
    samples.write_bytes(b"PAR1 cut")
    second = f.spool_run(tmp_path, T0 + timedelta(minutes=5), good_and(bad_host()))
    assert ingest_pending(tmp_path).runs == [second] and not Spool(tmp_path).pending()
    assert len(list(tmp_path.glob("host_status/date=*/*.parquet"))) == 2
    runs = sorted(tmp_path.glob("runs/date=*/*.parquet"))[0]
    runs.write_bytes(b"PAR1 cut")
    third = f.spool_run(tmp_path, T0 + timedelta(minutes=10), good_and(bad_host()))
    with pytest.raises(IngestError) as failed:
        ingest_pending(tmp_path)
    assert str(runs) in str(failed.value) and Spool(tmp_path).pending() == [third]
    runs.rename(tmp_path / "damaged.parquet")
    assert ingest_pending(tmp_path).runs == [third]


def test_a_disks_error_on_writing_is_no_hosts_fault(tmp_path, monkeypatch):
    """DuckDB's I/O errors (a full disk) are not the document's: the run stays in the spool, whole, and no
    host is marked failed for it; only conversion errors are traced to a host."""
    import duckdb

    real = ingest_module.write_rows

    def disk_full_for_big01(con, table, table_rows, dest):
        if table == "host_samples" and any(r["host"] == "bad01" for r in table_rows):
            raise duckdb.IOException("IO Error: Could not write file: No space left on device")
        return real(con, table, table_rows, dest)

    monkeypatch.setattr(ingest_module, "write_rows", disk_full_for_big01)
    run_id = f.spool_run(tmp_path, T0, good_and(bad_host()))
    with pytest.raises(IngestError, match="No space left on device"):
        ingest_pending(tmp_path)
    assert Spool(tmp_path).pending() == [run_id] and not (tmp_path / "spool" / "rejected").exists()
    assert not list(tmp_path.glob(f"*/date=*/{run_id}.parquet")) and not list(tmp_path.glob(".trial-*"))
    monkeypatch.setattr(ingest_module, "write_rows", real)  # space again: stored whole
    assert ingest_pending(tmp_path).runs == [run_id]
    assert rows(tmp_path, "SELECT host, status FROM host_status ORDER BY host") == [("bad01", "ok"), ("good01", "ok")]


def test_a_document_no_check_foresaw_costs_only_its_host(tmp_path, monkeypatch):
    real = ingest_module.host_rows

    def breaks_on_bad01(result, run_id):
        if result["host"] == "bad01":
            raise TypeError("'<' not supported between instances of 'NoneType' and 'str'")
        return real(result, run_id)

    monkeypatch.setattr(ingest_module, "host_rows", breaks_on_bad01)
    f.spool_run(tmp_path, T0, good_and(bad_host()))
    report = ingest_pending(tmp_path)
    assert_only_bad_refused(tmp_path, report, "TypeError: '<' not supported")


def test_two_filesystems_as_full_one_without_a_mount_name_are_stored(tmp_path):
    result = bad_host()
    result["document"]["disks"]["filesystems"] = [
        {"mount": None, "total_bytes": 100, "used_bytes": 50},
        {"mount": "/data", "total_bytes": 200, "used_bytes": 100}]
    f.spool_run(tmp_path, T0, good_and(result))
    assert not ingest_pending(tmp_path).refused
    assert rows(tmp_path, "SELECT fs_max_used_pct FROM host_samples WHERE host = 'bad01'") == [(50.0,)]


def test_counters_whose_sum_exceeds_64_bits_store_that_sum_as_unknown_and_keep_the_document(tmp_path):
    """Each counter fits 64 bits, their sum (what host_samples stores) does not: the sum is NULL, the rest of
    the host's document is stored."""
    result = bad_host(**{"document.cpu.jiffies.user": 2**62, "document.cpu.jiffies.nice": 2**62})
    result["document"]["network"]["interfaces"] = [{"name": "a", "rx_bytes": 2**62, "tx_bytes": 1},
                                                   {"name": "b", "rx_bytes": 2**62, "tx_bytes": 2}]
    f.spool_run(tmp_path, T0, good_and(result))
    assert not ingest_pending(tmp_path).refused
    assert rows(tmp_path, "SELECT cpu_user_jiffies, cpu_total_jiffies, net_rx_bytes, net_tx_bytes, load1 "
                          "FROM host_samples WHERE host = 'bad01'") == [(None, None, None, 3, 4.0)]


def test_hosts_whose_names_differ_only_in_case_keep_their_own_spool_files(tmp_path):
    """GPU01.json and gpu01.json are one file on a case-blind disk (macOS, SMB): one host's result was lost."""
    run_id = f.spool_run(tmp_path, T0, [f.ok(h, T0, f.document(h, T0)) for h in ("GPU01", "gpu01")])
    assert len({p.name.lower() for p in (tmp_path / "spool" / run_id).glob("*.json")}) == 3  # and run.json
    ingest_pending(tmp_path)
    assert rows(tmp_path, "SELECT host FROM host_status ORDER BY host") == [("GPU01",), ("gpu01",)]


def test_bidirectional_controls_in_host_text_are_stored_neutralised(tmp_path):
    """One left open (U+202E, right-to-left override) reverses the text after it on a report page."""
    result = bad_host()
    result["document"]["processes"] = {"total": 1, "top": [f.top_process(7, user="eve\u202e", command="gpj.exe")]}
    f.spool_run(tmp_path, T0, good_and(result))
    ingest_pending(tmp_path)
    assert rows(tmp_path, "SELECT user FROM host_processes WHERE host = 'bad01'") == [("eve\ufffd",)]


def test_ingest_sweeps_a_killed_writers_temp_files_but_not_a_live_ones(tmp_path):
    """`fleetscope admin` records its action without the data lock, as a temp file then a rename; a collect
    that started meanwhile swept every temp file and the action's audit row was lost. Only old ones go."""
    import os
    import time

    day = tmp_path / "admin_actions" / "date=2026-11-23"
    day.mkdir(parents=True)
    live, killed = day / ".rows.live.jsonl", day / ".rows.killed.jsonl"
    live.write_text("{}\n")
    killed.write_text("{}\n")
    an_hour_ago = time.time() - 3600
    os.utime(killed, (an_hour_ago, an_hour_ago))
    at = T0
    f.spool_run(tmp_path, at, [f.ok("good01", at, f.document("good01", at))])
    ingest_pending(tmp_path)
    assert live.exists() and not killed.exists()


def test_a_runs_rows_are_on_the_disk_before_its_spool_is_removed(tmp_path, monkeypatch):
    """A power cut after the spool's removal must find the Parquet files whole and named in their folders:
    each file and its folder are flushed (fsync) before the spool goes."""
    import os
    import re
    import shutil

    from fleetscope import spool as spool_module

    events = []
    real_fsync, real_rmtree = os.fsync, shutil.rmtree

    def fsync(fd):
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        return real_fsync(fd)

    def rmtree(path, *args, **kwargs):
        events.append(("rmtree", str(path)))
        return real_rmtree(path, *args, **kwargs)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(spool_module.shutil, "rmtree", rmtree)
    at = T0
    f.spool_run(tmp_path, at, [f.ok("gpu01", at, f.document("gpu01", at, gpus=[f.gpu(0)]))])
    events.clear()
    ingest_pending(tmp_path)
    removed = next(i for i, (what, path) in enumerate(events) if what == "rmtree" and "/spool/" in path)
    # a file is flushed under its temp name, then renamed: ".<name>.tmp" is <name>'s content
    synced = {re.sub(r"/\.([^/]+)\.tmp$", r"/\1", path) for what, path in events[:removed] if what == "fsync"}
    written = sorted(tmp_path.glob("*/date=*/*.parquet"))
    assert written and {str(p) for p in written} <= synced, (written, synced)
    assert {str(p.parent) for p in written} <= synced and {str(p.parent.parent) for p in written} <= synced


def test_a_run_killed_while_its_spool_was_being_removed_leaves_nothing(tmp_path, monkeypatch):
    """The removal took run.json first: the rest of the folder stayed for good, unseen by every later run."""
    import shutil

    from fleetscope import spool as spool_module

    at = T0
    f.spool_run(tmp_path, at, [f.ok(h, at, f.document(h, at)) for h in ("gpu01", "gpu02", "gpu03")])
    real_rmtree = shutil.rmtree

    def killed(path, *args, **kwargs):
        (Path(path) / "run.json").unlink()  # what rmtree had done when the kill came
        raise KeyboardInterrupt("killed")

    monkeypatch.setattr(spool_module.shutil, "rmtree", killed)
    with pytest.raises(KeyboardInterrupt):
        ingest_pending(tmp_path)
    monkeypatch.setattr(spool_module.shutil, "rmtree", real_rmtree)
    ingest_pending(tmp_path)
    assert list((tmp_path / "spool").iterdir()) == []
    assert rows(tmp_path, "SELECT count(*) FROM host_status") == [(3,)]  # stored once


def test_a_removal_that_cannot_finish_is_never_taken_for_a_new_run(tmp_path, monkeypatch):
    """A stored run's folder that could not be removed (files another user owns) stays as .trash-<id>, with
    its run.json: it must not be stored again under that name."""
    import shutil

    from fleetscope import spool as spool_module

    at = T0
    run_id = f.spool_run(tmp_path, at, [f.ok("gpu01", at, f.document("gpu01", at))])
    real_rmtree = shutil.rmtree
    monkeypatch.setattr(spool_module.shutil, "rmtree", lambda *args, **kwargs: None)  # removes nothing
    ingest_pending(tmp_path)
    assert (tmp_path / "spool" / f".trash-{run_id}" / "run.json").exists()
    ingest_pending(tmp_path)
    assert rows(tmp_path, "SELECT count(*) FROM host_status") == [(1,)]
    monkeypatch.setattr(spool_module.shutil, "rmtree", real_rmtree)
    ingest_pending(tmp_path)
    assert list((tmp_path / "spool").iterdir()) == []


@pytest.mark.parametrize("where", ["opening", "the views"])
def test_a_catalog_file_begun_on_a_full_disk_is_not_kept_as_damaged(tmp_path, monkeypatch, where):
    """The first fleet.duckdb, written on a full disk, was left half-written: every later run took it for a
    damaged file, moved it aside and said so. It is removed, the run says the disk is full, and the next run
    writes it."""
    import duckdb

    from fleetscope.warehouse import catalog

    f.spool_run(tmp_path, T0, [f.ok("good01", T0, f.document("good01", T0))])
    ingest_pending(tmp_path)
    for name in ("fleet.duckdb", ".fleet.duckdb.views"):
        (tmp_path / name).unlink()
    full = duckdb.IOException('IO Error: Could not write file "fleet.duckdb": No space left on device')
    if where == "opening":
        def connect(path, *args, **kwargs):
            Path(path).write_bytes(b"DUCK, cut short")
            raise full
        monkeypatch.setattr(catalog.duckdb, "connect", connect)
    else:
        def create_view(*args, **kwargs):
            raise full
        monkeypatch.setattr(catalog, "create_view", create_view)
    warning = catalog.refresh_catalog_file(tmp_path)
    assert "No space left on device" in warning
    assert not (tmp_path / "fleet.duckdb").exists()
    monkeypatch.undo()
    assert catalog.refresh_catalog_file(tmp_path) is None  # the next run: written, nothing moved aside
    assert not list(tmp_path.glob("fleet.duckdb.damaged-*")) and (tmp_path / "fleet.duckdb").exists()


def test_a_catalog_file_of_another_user_is_not_taken_for_damaged(tmp_path, monkeypatch):
    """`admin` run by an operator refreshes the views too, in a data folder cron's collect owns: DuckDB cannot
    open cron's fleet.duckdb for writing ("Permission denied"). That is no damaged file: it stays where it is,
    the operator gets a warning, and the next collect refreshes it. (It was moved aside as damaged and rebuilt
    as the operator's, and the next collect did the same the other way round.)"""
    import duckdb

    from fleetscope.warehouse import catalog

    f.spool_run(tmp_path, T0, [f.ok("good01", T0, f.document("good01", T0))])
    ingest_pending(tmp_path)
    before = (tmp_path / "fleet.duckdb").read_bytes()
    (tmp_path / ".fleet.duckdb.views").unlink()  # the views to write again (as after another table's first file)
    real_connect = duckdb.connect

    def connect(path=":memory:", *args, **kwargs):
        if str(path).endswith("fleet.duckdb"):
            raise duckdb.IOException(f'IO Error: Cannot open file "{path}": Permission denied')
        return real_connect(path, *args, **kwargs)

    monkeypatch.setattr(catalog.duckdb, "connect", connect)
    warning = catalog.refresh_catalog_file(tmp_path)
    assert "may not write" in warning and "Permission denied" in warning
    assert (tmp_path / "fleet.duckdb").read_bytes() == before and not list(tmp_path.glob("fleet.duckdb.damaged-*"))


def test_a_run_killed_before_it_listed_its_hosts_is_not_stored(tmp_path):
    """A run killed (kill -9) between writing its run.json and learning its hosts collected nothing: it is
    cleared with a warning, not stored as the fleet's latest run of 0 hosts. A run that finished with no hosts
    (an empty inventory) is on record, as is one killed after it listed them."""
    spool = Spool(tmp_path)
    meta = {"started_at": "2026-11-23T09:05:00Z", "finished_at": None, "inventory": "inventory.ini",
            "hosts": [], "fleetscope_version": "0.1.0"}
    killed = "20261123T090500000000Z-dead"
    spool.start_run(killed, {"run_id": killed, **meta})
    listed = "20261123T091000000000Z-beef"
    spool.start_run(listed, {"run_id": listed, **meta, "started_at": "2026-11-23T09:10:00Z", "hosts": ["gpu01"]})
    empty = f.spool_run(tmp_path, T0, [])  # finished, no hosts
    report = ingest_pending(tmp_path)
    assert any(f"run {killed} was stopped before it listed its hosts" in w for w in report.warnings)
    assert sorted(report.runs) == sorted([listed, empty])
    assert rows(tmp_path, "SELECT run_id, hosts_total FROM runs ORDER BY run_id") == [(empty, 0), (listed, 1)]
    assert rows(tmp_path, "SELECT host, status FROM host_status") == [("gpu01", "failed")]
    assert spool.pending() == []
