"""``python3 -m collectors``: print this host's document as JSON (how the collector is debugged and timed)."""

import argparse
import json
import sys

from . import SUBSYSTEMS, collect


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python3 -m collectors",
        description="Print this host's fleetscope document (docs/document.md) as JSON.",
        epilog="example: python3 -m collectors --only cpu,gpus --pretty",
    )
    parser.add_argument("--top", type=int, default=15, metavar="N",
                        help="processes to report: top N by CPU time plus top N by memory (default 15)")
    parser.add_argument("--only", metavar="NAMES",
                        help=f"comma-separated subsystems to collect, of: {','.join(SUBSYSTEMS)}")
    parser.add_argument("--accounting-since", metavar="TIME",
                        help="leave out NVML accounting records that ended before this ISO 8601 time")
    parser.add_argument("--pretty", action="store_true", help="indent the JSON")
    args = parser.parse_args(argv)
    only = None
    if args.only is not None:
        only = [n.strip() for n in args.only.split(",") if n.strip()]
        unknown = [n for n in only if n not in SUBSYSTEMS]
        if unknown:
            parser.error(f"unknown subsystem(s): {', '.join(unknown)}")
    document = collect(top_n=args.top, accounting_since=args.accounting_since, only=only)
    if args.pretty:
        json.dump(document, sys.stdout, indent=2)
    else:
        json.dump(document, sys.stdout, separators=(",", ":"))
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
