"""``python -m bench [--quick] [--only NAME[,NAME]] [--out DIR] [--profile] [--readme]``"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from bench.config import DEFAULT_OUT
from bench.procs import unwind_on_sigterm
from bench.scenarios import ORDER


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description="wanotify's benchmark suite (local services only).")
    parser.add_argument("--quick", action="store_true", help="a short smoke run (small sizes, ~3 min)")
    parser.add_argument("--only", default="", help=f"comma-separated scenarios out of: {', '.join(ORDER)}")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="results folder (default bench/results)")
    parser.add_argument("--profile", action="store_true",
                        help="sample the notifier (ingest) and the sender (sender_rate, idle_latency) with py-spy")
    parser.add_argument("--readme", action="store_true",
                        help="write this full run's table into README.md even if --only left scenarios out")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.only.split(",") if n.strip()] or list(ORDER)
    unknown = [n for n in names if n not in ORDER]
    if unknown:
        parser.error(f"unknown scenario(s) {', '.join(unknown)}; choose from {', '.join(ORDER)}")
    logging.basicConfig(level=logging.WARNING)
    unwind_on_sigterm()
    from bench.runner import run_suite

    results = run_suite([n for n in ORDER if n in names], args.out.resolve(), quick=args.quick, profile=args.profile,
                        readme=args.readme)
    return 0 if not any("error" in r for r in results["scenarios"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
