"""Command line: ``python -m repro.bench kernels [--out benchmarks/kernels.parquet] [--quick]``."""

from __future__ import annotations

import argparse
import sys

from repro.bench import format_table, run_kernel_benchmarks
from repro.io import write_parquet


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m repro.bench", description=__doc__)
    sub = parser.add_subparsers(dest="suite", required=True)
    kernels = sub.add_parser("kernels", help="time reference vs Triton for each registered kernel")
    kernels.add_argument("--out", default="benchmarks/kernels.parquet", help="Parquet file to write")
    kernels.add_argument("--quick", action="store_true", help="first shape of each kernel, few repeats")
    kernels.add_argument("--device", default=None, help="cuda or cpu (default: cuda when available)")
    kernels.add_argument("--kernel", action="append", dest="names", help="only this kernel (repeatable)")
    args = parser.parse_args(argv)

    if args.suite == "kernels":
        try:
            df = run_kernel_benchmarks(device=args.device, quick=args.quick, kernels=args.names)
        except (ValueError, RuntimeError) as err:
            print(f"error: {err}", file=sys.stderr)
            return 1
        write_parquet(df, args.out)
        print(format_table(df))
        print(f"wrote {len(df)} rows to {args.out}")
        if not df["matches_reference"].all():
            bad = df.loc[~df["matches_reference"], ["kernel", "backend", "shape", "dtype"]]
            print(f"error: outputs differ from the reference:\n{bad.to_string(index=False)}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
