"""Print the claims and runtime tables of a finished run: ``python -m repro.report.summary results/tables``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from repro.report.runtime import summarise_runtime


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("tables", type=Path, help="the results/tables folder of a finished run")
    args = parser.parse_args(argv)
    pd.set_option("display.width", 200)
    pd.set_option("display.max_colwidth", 60)
    missing = [n for n in ("claims.parquet", "runtime.parquet") if not (args.tables / n).is_file()]
    if missing:
        print(f"error: {', '.join(missing)} not found in {args.tables}; run the workflow first", file=sys.stderr)
        return 1
    claims = pd.read_parquet(args.tables / "claims.parquet")
    print("Claims (holds is computed from the measured value):")
    print(claims[["paper", "claim_id", "paper_value", "measured", "holds"]].to_string(index=False))
    runtime = pd.read_parquet(args.tables / "runtime.parquet")
    print("\nRuntime per rule (seconds summed over jobs, peak RSS in MB):")
    print(summarise_runtime(runtime).to_string())
    readme = args.tables / "README.md"
    if readme.is_file():
        print(f"\nEvery table with its columns and rows, claims per paper, tier and provenance: {readme}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
