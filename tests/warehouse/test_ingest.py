"""Spool -> Parquet -> DuckDB views, on a real DuckDB and real files."""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timedelta

import duckdb
import pytest

from fleetscope.spool import Spool, result_files
from fleetscope.warehouse import IngestError, connect, ingest_pending
from tests import docfactory as f

T0 = datetime(2026, 11, 23, 9, 0)
GIB = f.GIB


def count(data_dir, sql):
    con = connect(data_dir)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def two_hosts(at):
    return [
        f.ok("gpu01", at, f.document("gpu01", at, gpus=[f.gpu(0, util=90, processes=[f.gpu_process(11, "alice")]),
                                                      f.gpu(1, util=0)])),
        f.ok("cpu01", at, f.document("cpu01", at)),
        f.unreachable("lost01", at),
    ]


def test_a_run_lands_in_every_table(tmp_path):
    f.spool_run(tmp_path, T0, two_hosts(T0))
    report = ingest_pending(tmp_path)
    assert len(report.runs) == 1 and not report.rejected
    assert count(tmp_path, "SELECT host, status FROM host_status ORDER BY host") == [
        ("cpu01", "ok"), ("gpu01", "ok"), ("lost01", "unreachable")]
    assert count(tmp_path, "SELECT host, gpu_count FROM host_samples ORDER BY host") == [("cpu01", 0), ("gpu01", 2)]
    assert count(tmp_path, "SELECT gpu_index, utilization_gpu_pct FROM gpu_samples ORDER BY 1") == [(0, 90.0), (1, 0.0)]
    assert count(tmp_path, "SELECT user, pid, source FROM gpu_processes") == [("alice", 11, "running")]
    assert count(tmp_path, "SELECT hosts_total, hosts_ok, hosts_unreachable FROM runs") == [(3, 2, 1)]
    # Parquet is the storage of record, partitioned by day, and the catalog file has the same views.
    assert sorted(p.relative_to(tmp_path).parts[:2] for p in tmp_path.glob("host_samples/*/*.parquet")) == [
        ("host_samples", "date=2026-11-23")]
    assert (tmp_path / "fleet.duckdb").exists()
    assert not Spool(tmp_path).pending()


def test_ingesting_the_same_run_again_adds_nothing(tmp_path):
    run_id = f.spool_run(tmp_path, T0, two_hosts(T0))
    saved = tmp_path / "saved"
    shutil.copytree(tmp_path / "spool" / run_id, saved)
    ingest_pending(tmp_path)
    tables = ("runs", "host_status", "host_samples", "gpu_samples", "gpu_processes", "hosts")
    before = {t: count(tmp_path, f"SELECT count(*) FROM {t}") for t in tables}
    # A crash after the Parquet files were written but before the spool was cleared: the run comes back.
    shutil.copytree(saved, tmp_path / "spool" / run_id)
    again = ingest_pending(tmp_path)
    assert again.runs == [] and "already stored" in again.warnings[0]
    assert not Spool(tmp_path).pending()
    assert {t: count(tmp_path, f"SELECT count(*) FROM {t}") for t in tables} == before
    # A crash before the runs row was written: the run is written again, over its own files.
    next((tmp_path / "runs").glob(f"*/{run_id}.parquet")).unlink()
    shutil.copytree(saved, tmp_path / "spool" / run_id)
    assert ingest_pending(tmp_path).runs == [run_id]
    assert {t: count(tmp_path, f"SELECT count(*) FROM {t}") for t in tables} == before


def test_a_malformed_document_costs_only_its_own_host(tmp_path):
    results = two_hosts(T0)
    results[1]["document"]["cpu"]["jiffies"]["user"] = "lots"
    run_id = f.spool_run(tmp_path, T0, results)
    report = ingest_pending(tmp_path)
    assert len(report.rejected) == 1 and "cpu01" in report.rejected[0] and "cpu.jiffies.user" in report.rejected[0]
    status = dict(count(tmp_path, "SELECT host, status FROM host_status"))
    assert status == {"gpu01": "ok", "cpu01": "failed", "lost01": "unreachable"}
    assert count(tmp_path, "SELECT message FROM host_status WHERE host = 'cpu01'")[0][0].startswith(
        "rejected document")
    assert count(tmp_path, "SELECT DISTINCT host FROM host_samples") == [("gpu01",)]
    kept = tmp_path / "spool" / "rejected" / run_id
    assert json.loads((kept / "cpu01.json").read_text())["document"]["cpu"]["jiffies"]["user"] == "lots"
    assert "cpu.jiffies.user" in (kept / "cpu01.error.txt").read_text()


def test_an_unreadable_spool_file_is_set_aside(tmp_path):
    run_id = f.spool_run(tmp_path, T0, two_hosts(T0))
    (tmp_path / "spool" / run_id / "torn.json").write_text('{"host": "torn", "docu')
    report = ingest_pending(tmp_path)
    assert any("torn.json" in r for r in report.rejected)
    assert (tmp_path / "spool" / "rejected" / run_id / "torn.error.txt").exists()
    # the host it was for still gets its status: failed, with why
    assert len(count(tmp_path, "SELECT * FROM host_status")) == 4
    assert count(tmp_path, "SELECT status FROM host_status WHERE host = 'torn'") == [("failed",)]


def test_a_host_named_run_keeps_its_result(tmp_path):
    """A host result's file is named after the host: "run" was the run's own run.json, which the run's end
    overwrote with the run's metadata, losing the host's document while collect said it was ok."""
    results = [f.ok("run", T0, f.document("run", T0)), f.ok("cpu01", T0, f.document("cpu01", T0))]
    run_id = f.spool_run(tmp_path, T0, results)
    assert {p.name for p in (tmp_path / "spool" / run_id).iterdir()} >= {"run.json", "cpu01.json"}
    report = ingest_pending(tmp_path)
    assert not report.rejected
    assert count(tmp_path, "SELECT host, status FROM host_status ORDER BY host") == [("cpu01", "ok"), ("run", "ok")]
    assert count(tmp_path, "SELECT host FROM host_samples ORDER BY host") == [("cpu01",), ("run",)]


def test_an_unreadable_result_of_a_host_named_run_is_set_aside_under_its_name(tmp_path):
    at = T0 + timedelta(minutes=5)
    run_id = f.spool_run(tmp_path, at, [f.ok("run", at, f.document("run", at))])
    [torn] = [p for p in (tmp_path / "spool" / run_id).glob("run-*.json")]
    torn.write_text('{"host": "run", "docu')
    report = ingest_pending(tmp_path)
    assert any(torn.name in r for r in report.rejected)
    assert count(tmp_path, "SELECT host, status FROM host_status") == [("run", "failed")]


def test_inventory_is_stored_when_it_changes(tmp_path):
    for i, kernel in enumerate(["6.1.0-18-amd64", "6.1.0-18-amd64", "6.1.0-21-amd64"]):
        at = T0 + timedelta(minutes=5 * i)
        doc = f.document("cpu01", at)
        doc["host"]["kernel"] = kernel
        f.spool_run(tmp_path, at, [f.ok("cpu01", at, doc)])
        ingest_pending(tmp_path)
    assert count(tmp_path, "SELECT kernel FROM hosts ORDER BY ts") == [("6.1.0-18-amd64",), ("6.1.0-21-amd64",)]
    assert count(tmp_path, "SELECT count(*) FROM host_samples") == [(3,)]


def test_inventory_that_changes_back_is_stored_again(tmp_path):
    """Facts A, B, A, B: each run is a change from what was last stored (the latest row by time), so each
    gets its own row. Compared with any other stored row (the first, or the greatest hash), the host would look
    unchanged and the hosts table would go on saying it runs the kernel it no longer runs. Four runs, not
    three: whichever of the two hashes sorts first, a comparison by hash order misses one of them."""
    kernels = ["6.1.0-18-amd64", "6.1.0-21-amd64", "6.1.0-18-amd64", "6.1.0-21-amd64"]
    for i, kernel in enumerate(kernels):
        at = T0 + timedelta(minutes=5 * i)
        doc = f.document("cpu01", at)
        doc["host"]["kernel"] = kernel
        f.spool_run(tmp_path, at, [f.ok("cpu01", at, doc)])
        ingest_pending(tmp_path)
    assert count(tmp_path, "SELECT kernel FROM hosts ORDER BY ts") == [(k,) for k in kernels]


def test_a_document_without_its_gpus_tells_no_inventory(tmp_path):
    """The gpus subsystem failed (or ran out of time) but host did not: the document says nothing about the
    GPUs, so its 0 GPUs are not a change of inventory (nor is the next good run's 2 a change back)."""
    at = [T0 + timedelta(minutes=5 * i) for i in range(3)]
    docs = [f.document("gpu01", t, gpus=[f.gpu(0), f.gpu(1)]) for t in at]
    docs[1]["gpus"] = None
    docs[1]["errors"] = [{"subsystem": "gpus", "type": "NVMLError_Unknown", "message": "Unknown Error"}]
    for t, doc in zip(at, docs):
        f.spool_run(tmp_path, t, [f.ok("gpu01", t, doc)])
    assert not ingest_pending(tmp_path).rejected
    assert count(tmp_path, "SELECT ts, gpu_count FROM hosts") == [(at[0], 2)]
    assert count(tmp_path, "SELECT gpu_count FROM host_samples ORDER BY ts") == [(2,), (None,), (2,)]


def test_iowait_counts_as_idle_cpu_time(tmp_path):
    """A CPU waiting for I/O is not busy: cpu_idle_jiffies is idle + iowait (docs/sql.md), and CPU use
    (total - idle) leaves iowait out. docfactory's hosts never wait for I/O; this one does."""
    doc = f.document("cpu01", T0)
    doc["cpu"]["jiffies"] = {"user": 600, "nice": 100, "system": 200, "idle": 5000, "iowait": 700, "irq": 30,
                             "softirq": 20, "steal": 50}
    f.spool_run(tmp_path, T0, [f.ok("cpu01", T0, doc)])
    ingest_pending(tmp_path)
    assert count(tmp_path, "SELECT cpu_user_jiffies, cpu_system_jiffies, cpu_idle_jiffies, cpu_iowait_jiffies, "
                           "cpu_steal_jiffies, cpu_total_jiffies FROM host_samples") == [
        (700, 250, 5700, 700, 50, 6700)]


def test_the_fullest_filesystem_is_the_one_reported(tmp_path):
    """Among several filesystems the fullest by share is reported, with its mount: not the first, not the
    biggest, not the one with the most bytes used."""
    doc = f.document("cpu01", T0)
    doc["disks"]["filesystems"] = [
        {"mount": "/", "total_bytes": 1000 * GIB, "used_bytes": 100 * GIB},  # 10 %, most bytes used
        {"mount": "/scratch", "total_bytes": 100 * GIB, "used_bytes": 90 * GIB},  # 90 %
        {"mount": "/home", "total_bytes": 200 * GIB, "used_bytes": 100 * GIB},  # 50 %
    ]
    f.spool_run(tmp_path, T0, [f.ok("cpu01", T0, doc)])
    ingest_pending(tmp_path)
    assert count(tmp_path, "SELECT fs_max_used_pct, fs_max_used_mount, fs_total_bytes, fs_used_bytes "
                           "FROM host_samples") == [(90.0, "/scratch", 1300 * GIB, 290 * GIB)]


def test_an_empty_warehouse_answers_with_typed_empty_tables(tmp_path):
    assert count(tmp_path, "SELECT count(*) FROM gpu_samples") == [(0,)]
    con = connect(tmp_path)
    try:
        types = dict(con.execute("SELECT column_name, data_type FROM information_schema.columns "
                                 "WHERE table_name = 'gpu_samples'").fetchall())
    finally:
        con.close()
    assert types["energy_mj"] == "BIGINT" and types["ts"] == "TIMESTAMP"


def test_a_storage_failure_keeps_the_run_in_the_spool(tmp_path):
    run_id = f.spool_run(tmp_path, T0, two_hosts(T0))
    (tmp_path / "gpu_samples").write_text("not a folder")  # the table's folder cannot be created
    with pytest.raises(IngestError, match=f"run {run_id}: (FileExistsError|NotADirectoryError)"):
        ingest_pending(tmp_path)
    assert Spool(tmp_path).pending() == [run_id]
    (tmp_path / "gpu_samples").unlink()
    assert ingest_pending(tmp_path).runs == [run_id]
    assert count(tmp_path, "SELECT count(*) FROM gpu_samples") == [(2,)]


def test_accounting_since_is_each_hosts_last_stored_host_clock(tmp_path):
    from fleetscope.collect import accounting_since

    assert accounting_since(tmp_path) == {}
    for minutes in (0, 5):
        at = T0 + timedelta(minutes=minutes)
        f.spool_run(tmp_path, at, two_hosts(at))
        ingest_pending(tmp_path)
    # every stored host (the lookup runs before the inventory is parsed); not lost01, which never answered
    assert accounting_since(tmp_path) == {"gpu01": "2026-11-23T09:05:00Z", "cpu01": "2026-11-23T09:05:00Z"}


def test_accounting_since_is_the_latest_samples_host_clock_not_the_highest(tmp_path):
    """A host clock that was once hours ahead must not make the collector leave out every accounting record
    that ends before that time: the latest sample's host clock counts, not the largest ever seen."""
    from fleetscope.collect import accounting_since

    for minutes, skew in ((0, timedelta(hours=3)), (5, timedelta(0))):
        at = T0 + timedelta(minutes=minutes)
        doc = f.document("gpu01", at)
        doc["time"]["collected_at"] = f.iso_z(at + skew)
        f.spool_run(tmp_path, at, [f.ok("gpu01", at, doc)])
        ingest_pending(tmp_path)
    assert accounting_since(tmp_path) == {"gpu01": "2026-11-23T09:05:00Z"}


def catalog_views(data_dir):
    con = duckdb.connect(str(data_dir / "fleet.duckdb"), read_only=True)
    try:
        rows = con.execute("SELECT view_name, sql FROM duckdb_views() WHERE NOT internal").fetchall()
        return dict(rows)
    finally:
        con.close()


def test_the_catalog_file_is_rewritten_only_when_its_views_would_change(tmp_path):
    f.spool_run(tmp_path, T0, [f.ok("cpu01", T0, f.document("cpu01", T0))])
    ingest_pending(tmp_path)
    catalog = tmp_path / "fleet.duckdb"
    views = catalog_views(tmp_path)
    assert "read_parquet" in views["host_samples"] and "read_parquet" not in views["gpu_samples"]
    written = catalog.stat().st_mtime_ns
    # the same tables again: the views are the same, the file is left alone (and readable meanwhile)
    f.spool_run(tmp_path, T0 + timedelta(minutes=5), [f.ok("cpu01", T0, f.document("cpu01", T0))])
    ingest_pending(tmp_path)
    assert catalog.stat().st_mtime_ns == written
    # gpu_samples gets its first file: its view now reads it
    at = T0 + timedelta(minutes=10)
    f.spool_run(tmp_path, at, [f.ok("gpu01", at, f.document("gpu01", at, gpus=[f.gpu(0, util=50)]))])
    ingest_pending(tmp_path)
    assert "read_parquet" in catalog_views(tmp_path)["gpu_samples"]
    # someone changed the file (here: dropped a view): the next run writes the views again
    con = duckdb.connect(str(catalog))
    con.execute("DROP VIEW runs")
    con.close()
    at = T0 + timedelta(minutes=15)
    f.spool_run(tmp_path, at, [f.ok("cpu01", at, f.document("cpu01", at))])
    ingest_pending(tmp_path)
    assert catalog_views(tmp_path).keys() == views.keys()


def test_a_spool_file_holding_another_hosts_result_is_set_aside_not_stored_twice(tmp_path):
    """A spooled result is stored under the host it names: one copied or edited into another host's file gave
    that host two rows in the run (a review, by hand), and the file's own host none."""
    run_id = f.spool_run(tmp_path, T0, two_hosts(T0))
    run = tmp_path / "spool" / run_id
    (run / "cpu01.json").write_text((run / "gpu01.json").read_text())  # gpu01's result in cpu01's file
    report = ingest_pending(tmp_path)
    assert any("cpu01.json" in r and "another host's file" in r for r in report.rejected), report.rejected
    assert count(tmp_path, "SELECT host, status FROM host_status ORDER BY host") == [
        ("cpu01", "failed"), ("gpu01", "ok"), ("lost01", "unreachable")]
    assert count(tmp_path, "SELECT host, count(*) FROM host_samples GROUP BY host") == [("gpu01", 1)]


def test_a_document_stopped_at_its_time_limit_tells_no_inventory(tmp_path):
    """The collector's time limit came while it read the GPUs: gpus, host and disks are null, the rest is
    there. Its hosts row was all nulls and 0 GPUs, stored as an inventory change (and another at the next
    good run), and its sample said 0 GPUs: neither is known."""
    at = [T0 + timedelta(minutes=5 * i) for i in range(3)]
    stopped = f.document("gpu01", at[1], gpus=[f.gpu(0)])
    stopped["gpus"] = stopped["host"] = stopped["disks"] = None
    stopped["errors"] = [{"subsystem": s, "type": "Timeout", "message": "…"} for s in ("gpus", "host", "disks")]
    for t, doc in ((at[0], f.document("gpu01", at[0], gpus=[f.gpu(0)])), (at[1], stopped),
                   (at[2], f.document("gpu01", at[2], gpus=[f.gpu(0)]))):
        f.spool_run(tmp_path, t, [f.ok("gpu01", t, doc)])
    assert not ingest_pending(tmp_path).rejected
    assert count(tmp_path, "SELECT gpu_count, kernel FROM hosts") == [(1, "6.1.0-18-amd64")]
    assert count(tmp_path, "SELECT gpu_count FROM host_samples ORDER BY ts") == [(1,), (None,), (1,)]
    assert count(tmp_path, "SELECT status, errors FROM host_status ORDER BY ts") == [
        ("ok", 0), ("ok", 3), ("ok", 0)]


def test_processes_seen_and_hidden_are_stored_apart_from_the_threads(tmp_path):
    """procs_total is the kernel's thread count (load), procs_visible the processes the collector saw, and
    procs_hidden whether /proc hid other users' processes from it; null from a collector that does not say.
    Files written before these columns read them as NULL beside new ones."""
    hidden, old = f.document("gpu01", T0), f.document("cpu01", T0)
    hidden["processes"].update(total=12, others_hidden=True)
    del old["processes"]["others_hidden"]
    f.spool_run(tmp_path, T0, [f.ok("gpu01", T0, hidden), f.ok("cpu01", T0, old)])
    assert not ingest_pending(tmp_path).rejected
    sql = "SELECT host, procs_total, procs_visible, procs_hidden FROM host_samples ORDER BY ts, host"
    assert count(tmp_path, sql) == [("cpu01", 520, 400, None), ("gpu01", 520, 12, True)]

    # as an older fleetscope wrote them: without the two columns
    con = duckdb.connect()
    for file in (tmp_path / "host_samples").glob("date=*/*.parquet"):
        con.execute(f"COPY (SELECT * EXCLUDE (procs_visible, procs_hidden) FROM '{file}') TO '{file}.old' "
                    "(FORMAT parquet)")
        file.with_name(file.name + ".old").replace(file)
    con.close()
    later = T0 + timedelta(minutes=5)
    f.spool_run(tmp_path, later, [f.ok("cpu01", later, f.document("cpu01", later))])
    assert not ingest_pending(tmp_path).rejected
    assert count(tmp_path, sql) == [("cpu01", 520, None, None), ("gpu01", 520, None, None),
                                    ("cpu01", 520, 400, False)]


def test_a_processes_hidden_flag_that_is_not_true_or_false_is_refused(tmp_path):
    doc = f.document("cpu01", T0)
    doc["processes"]["others_hidden"] = "yes"
    f.spool_run(tmp_path, T0, [f.ok("cpu01", T0, doc)])
    report = ingest_pending(tmp_path)
    assert len(report.rejected) == 1 and "processes.others_hidden" in report.rejected[0]


def test_a_hosts_result_is_read_under_its_name_and_the_one_versions_before_69ee18a_gave_it():
    """Only a plain name with upper case was named otherwise: GPU01.json (a host named run then lost its
    result to the run's run.json: that is no host's file)."""
    assert result_files("GPU01")[1:] == ("GPU01.json",) and result_files("GPU01")[0].startswith("GPU01-")
    assert result_files("gpu01") == ("gpu01.json",)
    assert len(result_files("run")) == 1 and result_files("run")[0].startswith("run-")
    assert len(result_files("Bad Host")) == 1 and result_files("Bad Host")[0].startswith("Bad_Host-")


def _upper_case_run(at):
    """GPU01 and GPU02 (upper case: spooled as GPU01-<hash>.json since 69ee18a, GPU01.json before), gpu01."""
    return [f.ok(h, at, f.document(h, at, gpus=[f.gpu(0, util=50)])) for h in ("GPU01", "GPU02", "gpu01")]


def test_a_run_spooled_by_a_version_before_upper_case_names_got_a_hash_is_stored_after_the_upgrade(tmp_path):
    """A run left in the spool across the upgrade (killed, a full disk) has GPU01.json, the name the older
    version gave GPU01's result: it was refused as 'in another host's file', GPU01 stored as failed and its
    samples lost."""
    run_id = f.spool_run(tmp_path, T0, _upper_case_run(T0))
    run = tmp_path / "spool" / run_id
    for host in ("GPU01", "GPU02"):  # as the older version named them
        next(run.glob(f"{host}-*.json")).rename(run / f"{host}.json")
    report = ingest_pending(tmp_path)
    assert not report.rejected and not report.refused and not report.warnings, report
    assert count(tmp_path, "SELECT host, status FROM host_status ORDER BY host") == [
        ("GPU01", "ok"), ("GPU02", "ok"), ("gpu01", "ok")]
    assert count(tmp_path, "SELECT host, count(*) FROM gpu_samples GROUP BY host ORDER BY host") == [
        ("GPU01", 1), ("GPU02", 1), ("gpu01", 1)]


def test_a_host_in_both_its_older_and_its_current_spool_file_is_stored_once(tmp_path):
    """The file by this version's name is read; the older one is set aside with why, and the host is neither
    stored twice nor counted failed."""
    run_id = f.spool_run(tmp_path, T0, _upper_case_run(T0))
    run = tmp_path / "spool" / run_id
    current = next(run.glob("GPU01-*.json"))
    older = json.loads(current.read_text())
    older["document"]["gpus"]["devices"][0]["utilization_gpu_pct"] = 7  # the copy that is not read
    (run / "GPU01.json").write_text(json.dumps(older))
    report = ingest_pending(tmp_path)
    assert not report.rejected and not report.refused, report
    assert [w for w in report.warnings if "GPU01.json" in w and "second result of host 'GPU01'" in w
            and current.name in w], report.warnings
    assert (tmp_path / "spool" / "rejected" / run_id / "GPU01.json").is_file()
    assert count(tmp_path, "SELECT host, status FROM host_status ORDER BY host") == [
        ("GPU01", "ok"), ("GPU02", "ok"), ("gpu01", "ok")]
    assert count(tmp_path, "SELECT host, utilization_gpu_pct FROM gpu_samples ORDER BY host") == [
        ("GPU01", 50.0), ("GPU02", 50.0), ("gpu01", 50.0)]
    assert count(tmp_path, "SELECT hosts_total, hosts_ok FROM runs") == [(3, 3)]


def test_an_older_versions_file_name_holding_another_hosts_result_is_still_set_aside(tmp_path):
    """Accepting GPU01.json for GPU01 accepts it for no other host: gpu01's or GPU02's result in it is set
    aside as before, and GPU01 keeps the result its own file holds (or, with none, is failed)."""
    run_id = f.spool_run(tmp_path, T0, _upper_case_run(T0))
    run = tmp_path / "spool" / run_id
    (run / "GPU01.json").write_text((run / "gpu01.json").read_text())  # gpu01's result in GPU01's older name
    report = ingest_pending(tmp_path)
    assert any("GPU01.json" in r and "another host's file" in r for r in report.rejected), report.rejected
    assert not report.refused  # GPU01's own file holds its result: it is stored once, ok
    assert count(tmp_path, "SELECT host, status FROM host_status ORDER BY host") == [
        ("GPU01", "ok"), ("GPU02", "ok"), ("gpu01", "ok")]

    run_id = f.spool_run(tmp_path, T0 + timedelta(minutes=5), _upper_case_run(T0 + timedelta(minutes=5)))
    run = tmp_path / "spool" / run_id
    next(run.glob("GPU01-*.json")).unlink()
    (run / "GPU01.json").write_text(next(run.glob("GPU02-*.json")).read_text())  # GPU02's, in GPU01's name
    report = ingest_pending(tmp_path)
    assert any("GPU01.json" in r and "another host's file" in r for r in report.rejected), report.rejected
    assert list(report.refused) == [(run_id, "GPU01")]
    assert count(tmp_path, f"SELECT host, status FROM host_status WHERE run_id = '{run_id}' ORDER BY host") == [
        ("GPU01", "failed"), ("GPU02", "ok"), ("gpu01", "ok")]


def test_a_malformed_xid_event_is_left_out_and_said_not_the_hosts_document():
    """The collector sends the kernel log's Xid events since the host's last stored sample: a document refused
    for one bad event would bring it back on every run. The event is left out, its status message says so, and
    the good event beside it is stored, told to its GPU by its PCI address."""
    from datetime import datetime

    from fleetscope.warehouse import host_rows
    from tests.docfactory import document, gpu, iso_z, ok

    at = datetime(2026, 11, 24, 8, 0)
    doc = document("gpu01", at, gpus=[gpu(0), gpu(1)])
    doc["xid"] = {"available": True, "reason": None, "truncated": False, "events": [
        {"at": iso_z(at), "seq": 7, "pci": "0000:19:00", "xid": 2**31, "message": "x"},
        {"at": iso_z(at), "seq": 8, "pci": "0000:19:00", "xid": 48, "message": "DBE"},
        "not an event"]}
    rows = host_rows(ok("gpu01", at, doc), "run-1")
    assert [(x["xid"], x["gpu_index"], x["pci"]) for x in rows["gpu_xid"]] == [(48, 1, "0000:19:00")]
    assert rows["gpu_samples"] and rows["host_status"][0]["status"] == "ok"
    message = rows["host_status"][0]["message"]
    assert message.startswith("xid: 2 malformed event(s) left out (the first: host 'gpu01': field 'xid.events[0].xid'")
    doc["xid"] = {"available": True, "reason": None, "truncated": True, "boot_id": "b", "events": []}
    assert host_rows(ok("gpu01", at, doc), "run-1")["host_status"][0]["message"] == (
        "xid: more events than a run sends (the latest of each kind are), or the kernel log wrapped since the last "
        "run (events lost)")  # said, not silent
    doc["xid"] = "garbage"
    rows = host_rows(ok("gpu01", at, doc), "run-1")
    assert rows["gpu_xid"] == [] and rows["gpu_samples"]
    assert rows["host_status"][0]["message"].startswith("xid: left out: host 'gpu01': field 'xid'")


def test_a_run_stored_after_a_rollup_was_killed_in_a_swap_keeps_the_days_earlier_runs(tmp_path):
    """Review: a rollup killed between a day's two renames (the day as .old-, its compacted copy as .new-)
    left the day without a folder; the next run's rows made it anew, and the next rollup's recovery took that
    for a finished swap and deleted the day's earlier runs. Ingest finishes the swap first."""
    from fleetscope.warehouse import partitions

    first, second, third = T0, T0 + timedelta(minutes=5), T0 + timedelta(minutes=10)
    for at in (first, second):
        f.spool_run(tmp_path, at, two_hosts(at))
    assert not ingest_pending(tmp_path).rejected
    day = next((tmp_path / "host_samples").glob("date=*"))
    staging = day.with_name(partitions.NEW + day.name)
    shutil.copytree(day, staging)  # the compacted day, written
    day.rename(day.with_name(partitions.OLD + day.name))  # killed here, before the second rename
    f.spool_run(tmp_path, third, two_hosts(third))
    report = ingest_pending(tmp_path)
    partitions.recover(tmp_path)  # as the next rollup's: nothing left to do, nothing lost
    assert count(tmp_path, "SELECT count(*) FROM host_samples") == [(6,)]  # 3 runs x 2 hosts that answered
    assert any(w.startswith("storage: finished swapping") for w in report.warnings), report.warnings


def test_an_xid_event_sent_again_by_the_next_runs_is_stored_once():
    """The collector sends the last hour's Xid events again on every run (its margin): the warehouse tells them
    apart by the boot and the kernel log's sequence number. Another boot's event of the same number is new."""
    import tempfile
    from pathlib import Path

    from tests.docfactory import document, gpu, iso_z, ok, spool_run

    def run(data, at, events, boot="boot-1"):
        doc = document("gpu01", at, gpus=[gpu(0)])
        doc["xid"] = {"available": True, "reason": None, "truncated": False, "boot_id": boot, "events": [
            {"at": iso_z(at - timedelta(minutes=1)), "seq": seq, "pci": "0000:18:00", "xid": code, "message": "m"}
            for seq, code in events]}
        spool_run(data, at, [ok("gpu01", at, doc)])

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        run(data, T0, [(7, 79)])
        run(data, T0 + timedelta(minutes=5), [(7, 79), (8, 48)])  # 7 again, 8 new
        run(data, T0 + timedelta(minutes=10), [(7, 79), (8, 48)], boot="boot-2")  # rebooted: new events
        assert not ingest_pending(data).rejected
        assert count(data, "SELECT boot_id, seq, xid FROM gpu_xid ORDER BY ts, seq") == [
            ("boot-1", 7, 79), ("boot-1", 8, 48), ("boot-2", 7, 79), ("boot-2", 8, 48)]
