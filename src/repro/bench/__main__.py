"""Command line: ``python -m repro.bench kernels [--out benchmarks/kernels.parquet] [--quick]`` and
``python -m repro.bench compressed-llm [--out benchmarks/compressed_llm.parquet] [--layers 4]``."""

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
    llm = sub.add_parser("compressed-llm", help="dense vs SparseGPT 2:4 vs SVD-LLM speed of a LLaMA-shaped model")
    llm.add_argument("--out", default="benchmarks/compressed_llm.parquet", help="Parquet file (model speeds)")
    llm.add_argument("--gemm-out", default=None, help="also time dense vs 2:4 F.linear per 7B shape into this file")
    llm.add_argument("--preset", default="llama2-7b-dims", help="model dimensions: llama2-7b-dims or tiny")
    llm.add_argument("--layers", type=int, default=4, help="decoder layers of the random model")
    llm.add_argument("--device", default=None, help="cuda or cpu (default: cuda when available)")
    llm.add_argument("--dtype", default="float16")
    llm.add_argument("--batch", type=int, default=1)
    llm.add_argument("--prefill-len", type=int, default=2048)
    llm.add_argument("--decode-tokens", type=int, default=64)
    llm.add_argument("--repeats", type=int, default=5)
    llm.add_argument("--calibration-samples", type=int, default=16)
    llm.add_argument("--calibration-len", type=int, default=512)
    llm.add_argument("--sparse-backend", default="auto", help="auto, cusparselt or cutlass (2:4 kernels)")
    llm.add_argument("--rank-multiples", default="1", help="SVD-LLM rank_multiple values, comma-separated")
    llm.add_argument("--methods", default="sparsegpt,svd_llm", help="comma-separated: sparsegpt, svd_llm")
    args = parser.parse_args(argv)

    if args.suite == "compressed-llm":
        from repro.bench.compressed_llm import run_compressed_llm_benchmark, run_sparse_gemm_benchmark

        try:
            df = run_compressed_llm_benchmark(
                preset=args.preset,
                layers=args.layers,
                device=args.device,
                dtype=args.dtype,
                batch=args.batch,
                prefill_len=args.prefill_len,
                decode_tokens=args.decode_tokens,
                repeats=args.repeats,
                calibration_samples=args.calibration_samples,
                calibration_len=args.calibration_len,
                sparse_backend=args.sparse_backend,
                methods=tuple(m for m in args.methods.split(",") if m),
                rank_multiples=tuple(int(m) for m in args.rank_multiples.split(",") if m),
            )
        except ValueError as err:  # bad preset, method, rank multiple or backend
            print(f"error: {err}", file=sys.stderr)
            return 1
        write_parquet(df, args.out)
        print(df.pivot_table(index="metric", columns="method", values="value", aggfunc="first").to_string())
        print(f"wrote {len(df)} rows to {args.out}")
        if args.gemm_out:
            gemm = run_sparse_gemm_benchmark(device=args.device, dtype=args.dtype)
            write_parquet(gemm, args.gemm_out)
            print(gemm.drop(columns=["gpu_name", "torch_version", "device"]).to_string(index=False))
            print(f"wrote {len(gemm)} rows to {args.gemm_out}")
        return 0

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
