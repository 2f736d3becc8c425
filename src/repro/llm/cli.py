"""Command line for one compression run outside the DAG (development and spot checks).

    python -m repro.llm.cli MODEL_DIR --method slicegpt --sparsity 0.2 \\
        --calibration resources/text/austen/train.txt --evaluation resources/text/austen/test.txt

Loads a model folder (plain ``from_pretrained`` or a compressed folder), draws calibration
windows, compresses with one method of ``repro.llm.methods.registry``, optionally saves the
result (``--out``) and prints JSON: parameter counts before/after (both conventions), the
method's summary and the perplexity of the dense and compressed models on the evaluation
text (512-token windows by default).  The pipeline's rules call the same functions.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from repro.llm.adapters import get_adapter
from repro.llm.calibration import calibration_batches
from repro.llm.compressed import save_compressed
from repro.llm.eval.perplexity import perplexity
from repro.llm.methods.registry import compress
from repro.llm.params import compression_ratio, parameter_counts
from repro.llm.runs import SPARSE_METHODS
from repro.llm.stages import jsonable, load_model


def _settings(args) -> dict:
    settings = {k: getattr(args, k) for k in ("sparsity", "pattern", "ratio") if getattr(args, k) is not None}
    if args.method != "dense":
        settings["batch_size"] = args.batch_size
    return settings


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", type=Path, help="model folder")
    parser.add_argument("--method", required=True, help="dense, slicegpt, wanda, sparsegpt, shortgpt or svd_llm")
    parser.add_argument(
        "--sparsity", type=float, help="slicegpt width reduction / wanda, sparsegpt unstructured sparsity"
    )
    parser.add_argument("--pattern", help="wanda / sparsegpt N:M pattern, e.g. 2:4")
    parser.add_argument(
        "--ratio", type=float, help="shortgpt fraction of parameters / svd_llm fraction of each linear to remove"
    )
    parser.add_argument("--calibration", type=Path, required=True, help="calibration text file")
    parser.add_argument("--n-samples", type=int, default=16)
    parser.add_argument("--seq-len", type=int, default=512)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--evaluation", type=Path, help="text file for perplexity (dense and compressed)")
    parser.add_argument("--window", type=int, default=512)
    parser.add_argument("--max-windows", type=int, default=16)
    parser.add_argument("--out", type=Path, help="save the compressed model here")
    args = parser.parse_args(argv)
    try:
        for path in (args.calibration, args.evaluation):
            if path is not None and not path.is_file():
                raise FileNotFoundError(f"text file {path} does not exist")
        model, tokenizer = load_model(args.model, device="cpu")
        dense = parameter_counts(model, get_adapter(model))
        report = {"model": str(args.model), "method": args.method, "settings": _settings(args), "dense": dense}
        if args.evaluation is not None:
            text = args.evaluation.read_text()
            report["dense_perplexity"] = perplexity(
                model, tokenizer, text, window=args.window, max_windows=args.max_windows, progress=False
            )["perplexity"]
        ids = calibration_batches(tokenizer, args.calibration.read_text(), args.n_samples, args.seq_len, args.seed)
        t0 = time.perf_counter()
        model, info, loader = compress(args.method, model, tokenizer, ids, **_settings(args))
        report["compress_seconds"] = round(time.perf_counter() - t0, 2)
        counts = parameter_counts(model, get_adapter(model), nonzero=args.method in SPARSE_METHODS)
        report["compressed"] = counts
        report["removed"] = compression_ratio(dense, counts)
        if args.evaluation is not None:
            report["compressed_perplexity"] = perplexity(
                model, tokenizer, text, window=args.window, max_windows=args.max_windows, progress=False
            )["perplexity"]
        if args.out is not None:
            writer = None
            if loader == "slicegpt":
                from repro.llm.methods.slicegpt import write_weights as writer
            elif loader == "svd_llm":
                from repro.llm.methods.svd_llm import write_weights as writer
            info = jsonable({k: v for k, v in info.items() if k != "statistics"})
            save_compressed(
                model, tokenizer, args.out, method=args.method, info=info, loader=loader, write_weights=writer
            )
            report["saved"] = str(args.out)
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(json.dumps(jsonable(report), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
