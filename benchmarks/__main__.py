"""Run the benchmarks and write benchmarks/out/results.json.

    python -m benchmarks [--hosts 100] [--repeat 5]

collector   `python3 -m collectors` on this machine, against the baseline `python3 -c pass`
            (what any agentless tool pays to start the interpreter on a host)
ingest      storing one run of N host documents (spool -> Parquet), against the baseline of
            writing the same documents to the spool (the least any durable store does)
report      rendering the site for that warehouse, against the same spool baseline
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "benchmarks" / "out"


def timed(fn, repeat: int) -> float:
    """Median wall seconds of fn() over `repeat` runs."""
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


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


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--hosts", type=int, default=100, help="hosts per synthetic run (default 100)")
    p.add_argument("--repeat", type=int, default=5, help="runs per measurement; the median counts")
    args = p.parse_args(argv)
    results = {"collector": bench_collector(args.repeat), **bench_store_and_report(args.hosts, args.repeat)}
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    print(f"{'benchmark':<10} {'seconds':>9} {'baseline':>9} {'ratio':>7}  baseline")
    for name, r in results.items():
        print(f"{name:<10} {r['value_s']:>9.3f} {r['baseline_s']:>9.3f} {r['ratio']:>7.1f}  {r['baseline']}")
    print(f"written to {OUT / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
