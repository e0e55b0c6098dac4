"""Run the benchmarks and write benchmarks/out/results.json (and warehouse.json).

    python -m benchmarks [--hosts 100] [--repeat 5] [--gpus 8] [--days 30] [--only warehouse] [--quick]

Each result is a ratio against a baseline measured in the same process, on the same machine:

collector   `python3 -m collectors` on this machine, against the baseline `python3 -c pass`
            (what any agentless tool pays to start the interpreter on a host)
ingest      storing one run of N host documents (spool -> Parquet), against the baseline of
            writing the same documents to the spool (the least any durable store does)
report      rendering the site for that warehouse, against the same spool baseline
warehouse   a synthetic fleet (benchmarks/fleetgen.py: N hosts x G GPUs, D days every 5 minutes) written
            straight into the warehouse, then:
  wh_ingest   real spooled runs of that fleet through `ingest_pending`, against writing them to the spool
  wh_storage  the raw tables' Parquet bytes, against the same rows as JSON lines
  wh_rollup   `fleetscope.warehouse.rollup` over the whole period, against one scan of the raw rows it reads
  wh_query    "GPU-hours per user, last 30 days" on user_gpu_daily, against the same on the raw tables
  wh_report_year  the report with a year of history (the hourly and daily tiers extended to 365 days by
              copies of the rolled-up period shifted back, as a year of collection leaves them; raw
              samples stay at their retention), against the same report on the generated period alone

--quick is a smoke-test size for CI (seconds, not minutes); any explicit flag overrides it.
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "benchmarks" / "out"
SQL = Path(__file__).resolve().parent / "sql"
BENCHMARKS = ("collector", "ingest", "report", "warehouse")
RAW_TABLES = ("host_status", "host_samples", "gpu_samples", "gpu_processes", "host_processes", "runs", "hosts")
HOURLY_TABLES = ("gpu_hourly", "host_hourly")
DAILY_TABLES = ("gpu_daily", "host_daily", "user_gpu_daily", "process_gpu_daily")
FULL = {"hosts": 100, "repeat": 5, "gpus": 8, "days": 30.0, "interval": 300.0, "sample_runs": 12}
QUICK = {"hosts": 10, "repeat": 2, "gpus": 2, "days": 2.0, "interval": 300.0, "sample_runs": 3}


def timed(fn, repeat: int) -> float:
    """Median wall seconds of fn() over `repeat` runs."""
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def bench_collector(repeat: int) -> dict:
    python = "/usr/bin/python3" if Path("/usr/bin/python3").exists() else sys.executable

    def baseline():
        subprocess.run([python, "-c", "pass"], check=True)

    def collector():
        subprocess.run([python, "-m", "collectors"], check=True, cwd=ROOT, stdout=subprocess.DEVNULL)

    base, run = timed(baseline, repeat), timed(collector, repeat)
    return {"baseline": "python3 -c pass", "baseline_s": base, "value_s": run, "ratio": run / base}


def fleet_run(data_dir: Path, hosts: int, at: datetime) -> str:
    """Spool one run of `hosts` copies of this machine's real document, renamed; return the run id."""
    import collectors
    from fleetscope.collect import iso, new_run_id
    from fleetscope.spool import Spool

    doc = collectors.collect()
    run_id = new_run_id(at)
    spool = Spool(data_dir)
    meta = {"run_id": run_id, "started_at": iso(at), "finished_at": iso(at + timedelta(seconds=5)),
            "inventory": "bench", "hosts": [f"h{i:04d}" for i in range(hosts)]}
    spool.start_run(run_id, meta)
    for name in meta["hosts"]:
        doc["host"]["hostname"] = name
        spool.put(run_id, {"host": name, "status": "ok", "message": "", "ts": iso(at), "document": doc})
    spool.finish_run(run_id, meta)
    return run_id


def bench_store_and_report(hosts: int, repeat: int) -> dict:
    import duckdb  # noqa: F401 - import cost outside the timings

    import reports
    from fleetscope.warehouse import connect, ingest_pending

    at = datetime.now(timezone.utc).replace(tzinfo=None, microsecond=0)
    spool_s, ingest_s, report_s = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(repeat):
            data = Path(tmp) / f"d{i}"
            t = time.perf_counter()
            fleet_run(data, hosts, at + timedelta(minutes=5 * i))
            spool_s.append(time.perf_counter() - t)
            t = time.perf_counter()
            ingest_pending(data)
            ingest_s.append(time.perf_counter() - t)
            con = connect(data)
            t = time.perf_counter()
            reports.build_site(con, Path(tmp) / f"site{i}")
            report_s.append(time.perf_counter() - t)
            con.close()
    base = statistics.median(spool_s)
    return {
        "ingest": {"baseline": f"spool {hosts} documents", "baseline_s": base,
                   "value_s": statistics.median(ingest_s), "ratio": statistics.median(ingest_s) / base},
        "report": {"baseline": f"spool {hosts} documents", "baseline_s": base,
                   "value_s": statistics.median(report_s), "ratio": statistics.median(report_s) / base},
    }


# -- the warehouse over a synthetic fleet ----------------------------------------------------------------------

def _table_bytes(data_dir: Path, table: str) -> int:
    return sum(f.stat().st_size for f in (data_dir / table).glob("date=*/*.parquet"))


def _jsonl_bytes(data_dir: Path, table: str, scratch: Path) -> int:
    """The table's rows as JSON lines (one object per row, as DuckDB writes them), a day at a time."""
    import duckdb

    from fleetscope.warehouse.catalog import quote_literal

    total = 0
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    try:
        for folder in sorted((data_dir / table).glob("date=*")):
            files = "[" + ", ".join(quote_literal(str(f)) for f in sorted(folder.glob("*.parquet"))) + "]"
            dest = scratch / f"{table}.jsonl"
            con.execute(f"COPY (SELECT * FROM read_parquet({files}, hive_partitioning = false)) "
                        f"TO {quote_literal(str(dest))} (FORMAT json)")
            total += dest.stat().st_size
            dest.unlink()
    finally:
        con.close()
    return total


def _query(data_dir: Path, name: str, params: dict, repeat: int) -> tuple[float, dict[str, float]]:
    """Median seconds of a benchmarks/sql query on a fresh catalog connection, and its {user: hours}."""
    from fleetscope.warehouse import connect

    sql = (SQL / name).read_text(encoding="utf-8")
    params = {k: v for k, v in params.items() if f"${k}" in sql}
    times, result = [], {}
    for _ in range(max(3, repeat)):
        con = connect(data_dir)
        try:
            t = time.perf_counter()
            rows = con.execute(sql, params).fetchall()
            times.append(time.perf_counter() - t)
        finally:
            con.close()
        result = {user: hours for user, hours in rows}
    return statistics.median(times), result


def bench_warehouse(hosts: int, gpus: int, days: float, interval_s: float, sample_runs: int, repeat: int,
                    seed: int = 1, workers: int | None = None, keep: Path | None = None) -> tuple[dict, dict]:
    """The warehouse benchmarks; returns (ratio results, details for warehouse.json)."""
    from benchmarks import fleetgen
    from fleetscope.settings import Settings
    from fleetscope.warehouse import connect, ingest_pending, schemas

    settings = Settings()  # the defaults: what a fresh install runs with
    results: dict = {}
    details: dict = {"fleet": {"hosts": hosts, "gpus": gpus, "days": days, "interval_s": interval_s, "seed": seed},
                     "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]}}
    tmp = None
    if keep:
        data = Path(keep)
        shutil.rmtree(data, ignore_errors=True)
    else:
        tmp = tempfile.TemporaryDirectory(prefix="fleetscope-bench-")
        data = Path(tmp.name) / "data"
    scratch = data.parent / (data.name + ".scratch")
    scratch.mkdir(parents=True, exist_ok=True)
    try:
        # 1. the fleet, straight into Parquet; then `sample_runs` more runs of it, spooled for real ingest
        say(f"warehouse: generating {hosts} hosts x {gpus} GPUs x {days:g} days every {interval_s:g} s in {data}")
        gen = fleetgen.generate(data, hosts=hosts, gpus=gpus, days=days, interval_s=interval_s, seed=seed,
                                workers=workers, spool_after=sample_runs,
                                progress=fleetgen.tty_progress("warehouse: generating host results"))
        raw_rows = {t: n for t, n in gen.rows.items()}
        details["generate"] = {
            "seconds": gen.seconds, "workers": gen.workers, "runs": gen.runs, "host_results": gen.results,
            "documents": gen.documents, "statuses": dict(gen.statuses), "rows": raw_rows,
            "documents_per_s": gen.documents / gen.seconds, "rows_per_s": sum(raw_rows.values()) / gen.seconds,
            "start": gen.start.isoformat(), "end": gen.end.isoformat(),
        }
        say(f"warehouse: {gen.documents:,} documents, {sum(raw_rows.values()):,} rows in {gen.seconds:.0f} s "
            f"({gen.workers} worker(s))")

        # 2. bytes on disk: Parquet per stored value, and against the same rows as JSON lines
        say("warehouse: measuring Parquet and JSON lines sizes")
        storage, parquet_total, jsonl_total, values_total = {}, 0, 0, 0
        t = time.perf_counter()
        for table in RAW_TABLES:
            n, columns = raw_rows.get(table, 0), len(schemas()[table])
            pq, js = _table_bytes(data, table), _jsonl_bytes(data, table, scratch)
            storage[table] = {"rows": n, "columns": columns, "parquet_bytes": pq, "jsonl_bytes": js,
                              "bytes_per_value": pq / max(1, n * columns), "jsonl_over_parquet": js / max(1, pq)}
            parquet_total, jsonl_total, values_total = parquet_total + pq, jsonl_total + js, values_total + n * columns
        details["storage"] = {"tables": storage, "parquet_bytes": parquet_total, "jsonl_bytes": jsonl_total,
                              "values": values_total, "bytes_per_value": parquet_total / max(1, values_total),
                              "parquet_bytes_per_day": parquet_total / days, "jsonl_seconds": time.perf_counter() - t}
        results["wh_storage"] = {"baseline": "the same rows as JSON lines", "unit": "bytes",
                                 "baseline_value": jsonl_total, "value": parquet_total,
                                 "ratio": parquet_total / max(1, jsonl_total),
                                 "bytes_per_value": parquet_total / max(1, values_total)}

        # 3. the question on raw tables, and one scan of the raw rows (the rollup's baseline)
        until = gen.end
        since = until - timedelta(days=30)
        params = {"since": since, "until": until, "max_interval_s": float(settings.get("rollup", "max_interval_s"))}
        say("warehouse: GPU-hours per user on the raw tables")
        raw_s, raw_hours = _query(data, "gpu_hours_raw.sql", params, repeat)
        con = connect(data)
        try:
            scan_sql = (SQL / "scan_raw.sql").read_text(encoding="utf-8")
            scan_s = timed(lambda: con.execute(scan_sql).fetchall(), max(3, repeat))
        finally:
            con.close()

        # 4. the rollup over the whole period, then the question on user_gpu_daily
        try:
            from fleetscope.warehouse.rollup import rollup
        except ImportError as e:
            rollup = None
            details["rollup"] = {"skipped": f"fleetscope.warehouse.rollup is not available: {e}"}
            say(f"warehouse: rollup benchmarks skipped: {e}")
        if rollup is not None:
            say("warehouse: rollup of the whole period")
            t = time.perf_counter()
            report = rollup(data, settings, now=until, progress=_rollup_progress())
            rollup_s = time.perf_counter() - t
            results["wh_rollup"] = {"baseline": "one scan of the raw rows it reads", "baseline_s": scan_s,
                                    "value_s": rollup_s, "ratio": rollup_s / scan_s,
                                    "seconds_per_day": rollup_s / days}
            say("warehouse: GPU-hours per user on user_gpu_daily")
            rolled_s, rolled_hours = _query(data, "gpu_hours_rollup.sql", params, repeat)
            results["wh_query"] = {"baseline": "the same question on the raw tables", "baseline_s": raw_s,
                                   "value_s": rolled_s, "ratio": rolled_s / raw_s}
            users = sorted(set(raw_hours) | set(rolled_hours))
            diff = max((abs(raw_hours.get(u, 0.0) - rolled_hours.get(u, 0.0)) for u in users), default=0.0)
            rollup_bytes = {t: _table_bytes(data, t) for t in HOURLY_TABLES + DAILY_TABLES}
            details["rollup"] = {
                "seconds": rollup_s, "days_rolled": len(report.days_rolled), "compacted": report.compacted,
                "deleted": report.deleted, "bytes": rollup_bytes,
                "hourly_bytes_per_day": sum(rollup_bytes[t] for t in HOURLY_TABLES) / days,
                "daily_bytes_per_day": sum(rollup_bytes[t] for t in DAILY_TABLES) / days,
            }
            details["query"] = {
                "since": since.isoformat(), "until": until.isoformat(), "raw_s": raw_s, "rollup_s": rolled_s,
                "users": len(users), "gpu_hours_raw": sum(raw_hours.values()),
                "gpu_hours_rollup": sum(rolled_hours.values()), "max_user_difference_h": diff,
            }
            details["projection"] = _projection(details, settings)

        # 4b. the report on the generated period, then with the rollup tiers extended to a year
        if rollup is not None:
            say("warehouse: the report on the generated period, then with a year of rollups")
            results["wh_report_year"], details["report_year"] = _year_report(data, scratch, days, repeat)

        # 5. real ingest of the spooled sample (after the period: the warehouse already holds it)
        say(f"warehouse: ingesting {len(gen.spooled)} spooled runs ({len(gen.spooled) * hosts} host results)")
        spool_bytes = _spool_bytes(data)
        t = time.perf_counter()
        ingested = ingest_pending(data)
        ingest_s = time.perf_counter() - t
        rows = sum(ingested.rows.values())
        results["wh_ingest"] = {"baseline": f"spool the same {len(gen.spooled)} runs",
                                "baseline_s": gen.spool_seconds, "value_s": ingest_s,
                                "ratio": ingest_s / gen.spool_seconds, "rows_per_s": rows / ingest_s,
                                "host_results_per_s": len(gen.spooled) * hosts / ingest_s}
        details["ingest"] = {"runs": len(ingested.runs), "rows": dict(ingested.rows), "seconds": ingest_s,
                             "spool_seconds": gen.spool_seconds, "rejected": len(ingested.rejected),
                             "rows_per_s": rows / ingest_s,
                             "spool_bytes_per_document": spool_bytes / max(1, len(gen.spooled) * hosts)}
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        if tmp is not None:
            tmp.cleanup()
    return results, details


def _year_report(data: Path, scratch: Path, days: float, repeat: int) -> tuple[dict, dict]:
    """Build time and size of the site before and after extending the rollup tiers to 365 days."""
    import reports
    from fleetscope.warehouse import connect, schemas

    def build(tag: str) -> tuple[float, dict]:
        times = []
        for i in range(max(2, min(repeat, 3))):
            out = scratch / f"site-{tag}-{i}"
            con = connect(data)
            try:
                t = time.perf_counter()
                reports.build_site(con, out)
                times.append(time.perf_counter() - t)
            finally:
                con.close()
        files = [f for f in out.rglob("*") if f.is_file()]
        size = {"files": len(files), "bytes": sum(f.stat().st_size for f in files),
                "gzip_bytes": sum(len(gzip.compress(f.read_bytes(), 6)) for f in files),
                "largest": {f.name: f.stat().st_size for f in sorted(files, key=lambda f: -f.stat().st_size)[:5]}}
        return statistics.median(times), size

    base_s, base_size = build("period")
    period = max(1, int(days))
    con = connect(data)
    try:
        first = con.execute("SELECT min(ts) FROM gpu_daily").fetchone()[0]  # every tier's ts is a time
        for table in HOURLY_TABLES + DAILY_TABLES:
            columns = schemas()[table]
            source = f"read_parquet('{data / table}/date=*/*.parquet', union_by_name = true)"
            for k in range(1, math.ceil(365 / period)):
                shift = f"INTERVAL {k * period} DAY"
                select = ", ".join(f'"{c}" - {shift} AS "{c}"' if t == "TIMESTAMP" else f'"{c}"' for c, t in columns)
                folder = data / table / f"date={(first - timedelta(days=k * period)).date().isoformat()}"
                folder.mkdir(parents=True, exist_ok=True)
                con.execute(f"COPY (SELECT {select} FROM {source} WHERE ts >= ?) "
                            f"TO '{folder / (table + '-shifted.parquet')}' (FORMAT parquet)", [first])
        rows = {t: con.execute(f"SELECT count(*) FROM read_parquet('{data / t}/date=*/*.parquet')").fetchone()[0]
                for t in HOURLY_TABLES + DAILY_TABLES}
    finally:
        con.close()
    year_s, year_size = build("year")
    result = {"baseline": f"the same report on {days:g} days of history", "baseline_s": base_s, "value_s": year_s,
              "ratio": year_s / base_s, "site_bytes": year_size["bytes"], "gzip_bytes": year_size["gzip_bytes"]}
    return result, {"period": {"seconds": base_s, **base_size}, "year": {"seconds": year_s, **year_size},
                    "rollup_rows": rows}


def _spool_bytes(data: Path) -> int:
    return sum(f.stat().st_size for f in (data / "spool").rglob("*.json") if f.name != "run.json")


def _projection(details: dict, settings) -> dict:
    """Bytes on disk once the retention tiers are full, for this fleet, with the default retention."""
    storage, rollup = details["storage"]["tables"], details["rollup"]
    days = details["fleet"]["days"]
    raw_day = sum(storage[t]["parquet_bytes"] for t in RAW_TABLES if t not in ("runs", "hosts")) / days
    kept_day = sum(storage[t]["parquet_bytes"] for t in ("runs", "hosts")) / days
    raw_days = int(settings.get("rollup", "raw_days"))
    hourly_days = int(settings.get("rollup", "hourly_days"))
    out = {"raw_bytes_per_day": raw_day, "raw_days": raw_days, "hourly_days": hourly_days}
    for years in (1, 5):
        total_days = 365 * years
        out[f"bytes_after_{years}y"] = (raw_day * min(raw_days or total_days, total_days)
                                        + rollup["hourly_bytes_per_day"] * min(hourly_days or total_days, total_days)
                                        + rollup["daily_bytes_per_day"] * total_days + kept_day * total_days)
    return out


def _rollup_progress():
    if not sys.stderr.isatty():
        return None

    def progress(message: str) -> None:
        sys.stderr.write(f"\r{message}   ")
        sys.stderr.flush()

    return progress


# -- the command -------------------------------------------------------------------------------------------------

def _fmt(r: dict, key: str) -> str:
    if r.get("unit") == "bytes":
        return f"{r[key] / 1e6:,.1f} MB"
    return f"{r[key]:.3f} s"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--hosts", type=int, help="hosts per synthetic run (ingest, report) and in the warehouse fleet "
                                             "(default 100)")
    p.add_argument("--repeat", type=int, help="runs per measurement; the median counts (default 5)")
    p.add_argument("--gpus", type=int, help="GPUs per host in the warehouse fleet (default 8)")
    p.add_argument("--days", type=float, help="days of the warehouse fleet (default 30)")
    p.add_argument("--interval", type=float, help="seconds between runs in the warehouse fleet (default 300)")
    p.add_argument("--sample-runs", type=int, help="runs of the fleet spooled and ingested for real (default 12)")
    p.add_argument("--seed", type=int, default=1, help="the fleet's random seed (default 1)")
    p.add_argument("--workers", type=int, help="generator processes (default: one per CPU)")
    p.add_argument("--only", action="append", choices=BENCHMARKS, help="run only this benchmark (repeatable)")
    p.add_argument("--keep", type=Path, metavar="DIR", help="generate the warehouse in DIR (replaced) and keep it")
    p.add_argument("--quick", action="store_true", help="CI size: " + ", ".join(f"{k}={v:g}" for k, v in QUICK.items()))
    args = p.parse_args(argv)
    preset = QUICK if args.quick else FULL
    opt = {k: getattr(args, k) if getattr(args, k) is not None else v for k, v in preset.items()}
    only = set(args.only or BENCHMARKS)

    results: dict = {}
    failed: dict[str, str] = {}
    details = None

    def attempt(names, fn):
        """Run one benchmark; a failure is reported and the others still run."""
        try:
            return fn()
        except Exception as e:  # any failure of the code under test
            failed[names] = f"{type(e).__name__}: {e}"
            say(f"{names}: FAILED: {failed[names]}")
            return None

    if "collector" in only:
        say("collector ...")
        r = attempt("collector", lambda: bench_collector(opt["repeat"]))
        if r:
            results["collector"] = r
    if only & {"ingest", "report"}:
        say("ingest, report ...")
        store = attempt("ingest/report", lambda: bench_store_and_report(opt["hosts"], opt["repeat"]))
        results.update({k: v for k, v in (store or {}).items() if k in only})
    if "warehouse" in only:
        wh = attempt("warehouse", lambda: bench_warehouse(
            opt["hosts"], opt["gpus"], opt["days"], opt["interval"], opt["sample_runs"], opt["repeat"], args.seed,
            args.workers, args.keep))
        if wh:
            results.update(wh[0])
            details = wh[1]
    OUT.mkdir(parents=True, exist_ok=True)
    stamp = {"when": datetime.now(timezone.utc).isoformat(timespec="seconds"), "argv": sys.argv[1:] if argv is None
             else list(argv), "options": opt, "cpus": os.cpu_count()}
    # results.json keeps the latest result of each benchmark: a run with --only updates its own entries
    try:
        kept = {k: v for k, v in json.loads((OUT / "results.json").read_text()).items() if not k.startswith("_")}
    except (OSError, ValueError, AttributeError):
        kept = {}
    merged = {**kept, **{k: {**v, "when": stamp["when"]} for k, v in results.items()}}
    (OUT / "results.json").write_text(json.dumps({**merged, "_failed": failed, "_run": stamp}, indent=2) + "\n")
    if details is not None:
        (OUT / "warehouse.json").write_text(json.dumps({**details, "_run": stamp}, indent=2, default=str) + "\n")
    print(f"{'benchmark':<11} {'value':>12} {'baseline':>12} {'ratio':>8}  baseline")
    for name, r in results.items():
        key, base = ("value", "baseline_value") if r.get("unit") == "bytes" else ("value_s", "baseline_s")
        ratio = f"{r['ratio']:.3f}" if r["ratio"] < 1 else f"{r['ratio']:.1f}"
        print(f"{name:<11} {_fmt(r, key):>12} {_fmt(r, base):>12} {ratio:>8}  {r['baseline']}")
    if details is not None:
        _print_details(details)
    print(f"written to {OUT / 'results.json'}" + (f" and {OUT / 'warehouse.json'}" if details else ""))
    for names, error in failed.items():
        print(f"FAILED {names}: {error}")
    return 1 if failed else 0


def _print_details(d: dict) -> None:
    g, s = d["generate"], d["storage"]
    print(f"fleet: {d['fleet']['hosts']} hosts x {d['fleet']['gpus']} GPUs x {d['fleet']['days']:g} days: "
          f"{g['documents']:,} documents, {g['rows']['gpu_samples']:,} gpu_samples rows, "
          f"generated in {g['seconds']:.0f} s ({g['documents_per_s']:,.0f} documents/s, {g['workers']} worker(s))")
    print(f"storage: {s['parquet_bytes'] / 1e6:,.1f} MB Parquet ({s['bytes_per_value']:.2f} bytes per stored value), "
          f"{s['jsonl_bytes'] / 1e6:,.1f} MB as JSON lines")
    if "ingest" in d:
        i = d["ingest"]
        print(f"ingest: {sum(i['rows'].values()):,} rows of {i['runs']} runs in {i['seconds']:.2f} s "
              f"({i['rows_per_s']:,.0f} rows/s); {i['spool_bytes_per_document'] / 1e3:.1f} kB per spooled document")
    if "query" in d:
        q, r = d["query"], d["rollup"]
        print(f"rollup: {r['days_rolled']} days in {r['seconds']:.1f} s; GPU-hours per user: raw {q['raw_s']:.3f} s, "
              f"rollup {q['rollup_s']:.4f} s, {q['users']} users, "
              f"largest difference {q['max_user_difference_h']:.3f} h")
        pr = d["projection"]
        print(f"projection with default retention: {pr['bytes_after_1y'] / 1e9:.2f} GB after 1 year, "
              f"{pr['bytes_after_5y'] / 1e9:.2f} GB after 5 years")
    elif "rollup" in d:
        print(f"rollup: {d['rollup']['skipped']}")
    if "report_year" in d:
        p, y = d["report_year"]["period"], d["report_year"]["year"]
        hourly = d["report_year"]["rollup_rows"].get("gpu_hourly", 0)
        print(f"report: {p['seconds']:.1f} s on the generated period ({p['bytes'] / 1e6:.1f} MB); with a year of "
              f"rollups ({hourly:,} gpu_hourly rows) {y['seconds']:.1f} s, "
              f"{y['bytes'] / 1e6:.1f} MB in {y['files']} files, {y['gzip_bytes'] / 1e6:.1f} MB gzipped")


if __name__ == "__main__":
    sys.exit(main())
