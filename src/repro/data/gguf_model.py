"""Convert a GGUF causal language model into a plain safetensors folder, and evaluate it.

What it does
    ``convert_gguf_to_safetensors`` reads a GGUF checkpoint (llama.cpp's single-file format, weights
    usually block-quantised, tokenizer stored as metadata) and writes an ordinary Hugging Face model
    folder: ``config.json``, ``generation_config.json``, ``model.safetensors`` and the tokenizer files.
    That folder loads with a plain ``from_pretrained(folder)``, with no ``gguf`` dependency and no
    per-load dequantisation. ``load_causal_lm``, ``greedy_continuation`` and ``sliding_perplexity``
    are the small evaluation helpers the pipeline runs on the converted folder.

Why it is done this way
    transformers can load a GGUF (``from_pretrained(folder, gguf_file=name)``): for architectures such
    as llama it dequantises every tensor to float32 (and undoes llama.cpp's permutation of the q/k
    projection rows), giving a dense model. But the loaded model keeps a GGUF ``quantization_config``
    and its quantizer declares itself non-serialisable, so ``save_pretrained`` on it is refused. We
    therefore copy its config without ``quantization_config``, build a fresh model of the same class
    from that config, load the dequantised state dict into it strictly (every key must match), and save
    that. The values are exactly the dequantised GGUF weights (in float32 by default), i.e. the
    quantisation error of the GGUF is baked in; nothing is re-quantised.

    The output folder appears atomically: everything is written to a temporary sibling folder that is
    ``os.replace``-d onto ``out_dir`` only once complete, so an interrupted conversion never leaves a
    complete-looking folder behind (it leaves at most a hidden ``.<name>.tmp-*`` folder, removed on
    ordinary exceptions).

    Everything is local: paths are passed as folders plus file names with ``local_files_only=True``,
    and ``trust_remote_code`` is never enabled.

Reference input (development only, not in CI)
    SmolLM2-135M-Instruct ``Q4_1`` GGUF (98,362,432 bytes): llama architecture, 30 layers, hidden 576,
    FFN 1536, 9 attention heads, 3 KV heads, vocabulary 49,152, tied input/output embeddings, byte-level
    BPE tokenizer inside the GGUF.

Perplexity policy
    ``sliding_perplexity`` tokenises the whole text once without special tokens, cuts it into
    consecutive non-overlapping windows of ``window`` tokens, drops the final partial window
    (``remainder_policy="drop"``), and scores each window independently: every token but the first of
    a window is predicted from the tokens before it in that window, so each window contributes
    ``window - 1`` scored tokens. Perplexity is ``exp(total NLL / scored tokens)``.

CLI
    ``python -m repro.data.gguf_model convert GGUF OUT_DIR [--dtype float32] [--overwrite]``
    ``python -m repro.data.gguf_model check MODEL_DIR [--text FILE --window 512 --max-windows N]``
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

CHECK_PROMPT = "The capital of France is Paris. The capital of Germany is"

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


class ModelInputError(ValueError):
    """A GGUF file or model folder that is missing or cannot be used; the message names the path."""


def _torch_dtype(dtype: str | torch.dtype) -> torch.dtype:
    if isinstance(dtype, torch.dtype):
        return dtype
    try:
        return DTYPES[dtype]
    except KeyError:
        raise ValueError(f"unsupported dtype {dtype!r}; choose one of {sorted(DTYPES)}") from None


def _check_gguf_path(gguf_path: Path) -> Path:
    gguf_path = Path(gguf_path)
    if not gguf_path.is_file():
        raise ModelInputError(f"GGUF file not found: {gguf_path}")
    with gguf_path.open("rb") as handle:
        magic = handle.read(4)
    if magic != b"GGUF":
        raise ModelInputError(f"not a GGUF file (bad magic {magic!r}): {gguf_path}")
    return gguf_path.resolve()


def _check_model_dir(model_dir: Path) -> Path:
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise ModelInputError(f"model folder not found: {model_dir}")
    missing = [name for name in ("config.json", "tokenizer.json") if not (model_dir / name).is_file()]
    if not any(model_dir.glob("*.safetensors")):
        missing.append("*.safetensors")
    if missing:
        raise ModelInputError(f"not a converted model folder (missing {', '.join(missing)}): {model_dir}")
    return model_dir


def load_gguf(gguf_path: Path, dtype: torch.dtype = torch.float32):
    """Load (model, tokenizer) straight from a GGUF file, dequantised, with transformers' GGUF loader."""
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    gguf_path = _check_gguf_path(gguf_path)
    folder, name = str(gguf_path.parent), gguf_path.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name, local_files_only=True, trust_remote_code=False)
    # dequantize=True: never keep packed GGUF blocks (transformers can, for some architectures, when the
    # optional `kernels` package is present); the conversion needs an ordinary dense state dict.
    model = AutoModelForCausalLM.from_pretrained(
        folder,
        gguf_file=name,
        dtype=dtype,
        local_files_only=True,
        trust_remote_code=False,
        quantization_config=GgufConfig(dequantize=True),
    )
    return model.eval(), tokenizer


def rebuild_plain_model(loaded_model, dtype: torch.dtype = torch.float32):
    """A fresh, serialisable model of the same class holding exactly ``loaded_model``'s weights.

    The config is copied without ``quantization_config`` (so the result is an ordinary dense model),
    the state dict is loaded strictly and every key must match, and the result is cast to ``dtype``.
    """
    config_class = type(loaded_model.config)
    config_dict = loaded_model.config.to_dict()
    config_dict.pop("quantization_config", None)
    config = config_class.from_dict(config_dict)
    model = type(loaded_model)(config)
    state_dict = loaded_model.state_dict()
    result = model.load_state_dict(state_dict, strict=True)
    if result.missing_keys or result.unexpected_keys:  # strict=True raises first; kept as a hard check
        raise RuntimeError(f"state dict mismatch: missing={result.missing_keys} unexpected={result.unexpected_keys}")
    fresh_keys, loaded_keys = set(model.state_dict()), set(state_dict)
    if fresh_keys != loaded_keys:
        raise RuntimeError(f"state dict keys differ: {sorted(fresh_keys ^ loaded_keys)}")
    if hasattr(model, "tie_weights"):
        model.tie_weights()
    return model.to(dtype).eval()


def save_model_folder(model, tokenizer, folder: Path) -> list[str]:
    """Write model (safetensors) and tokenizer into ``folder``; return the sorted file names."""
    folder = Path(folder)
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return sorted(path.name for path in folder.iterdir() if path.is_file())


def _make_readable(folder: Path) -> None:
    """Give the folder and its files the usual umask-based modes (``mkdtemp`` and some writers use 0o700/0o600)."""
    umask = os.umask(0)
    os.umask(umask)
    folder.chmod(0o777 & ~umask)
    for path in folder.iterdir():
        if path.is_file():
            path.chmod(0o666 & ~umask)


def _publish(tmp_dir: Path, out_dir: Path, overwrite: bool) -> None:
    """Move the finished ``tmp_dir`` onto ``out_dir`` with ``os.replace`` (atomic on one filesystem)."""
    if out_dir.exists():
        if not overwrite:
            raise FileExistsError(f"output folder already exists (pass overwrite=True / --overwrite): {out_dir}")
        old = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old-", dir=out_dir.parent))
        os.replace(out_dir, old / out_dir.name)
        os.replace(tmp_dir, out_dir)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp_dir, out_dir)


def convert_gguf_to_safetensors(
    gguf_path: Path, out_dir: Path, dtype: str = "float32", *, overwrite: bool = False
) -> dict[str, Any]:
    """Convert a GGUF causal LM into a safetensors model folder at ``out_dir``; return a summary.

    The summary holds ``n_params``, ``architecture``, ``model_type``, ``dtype``, ``seconds``, ``files``
    and ``source`` (file name and size of the GGUF).
    """
    start = time.perf_counter()
    torch_dtype = _torch_dtype(dtype)
    gguf_path = _check_gguf_path(gguf_path)
    out_dir = Path(out_dir).absolute()
    if out_dir.exists() and not overwrite:
        raise FileExistsError(f"output folder already exists (pass overwrite=True / --overwrite): {out_dir}")
    out_dir.parent.mkdir(parents=True, exist_ok=True)

    loaded, tokenizer = load_gguf(gguf_path, dtype=torch.float32)
    model = rebuild_plain_model(loaded, dtype=torch_dtype)
    del loaded

    tmp_dir = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    try:
        files = save_model_folder(model, tokenizer, tmp_dir)
        _make_readable(tmp_dir)
        _publish(tmp_dir, out_dir, overwrite)
    except BaseException:
        shutil.rmtree(tmp_dir, ignore_errors=True)
        raise

    return {
        "architecture": type(model).__name__,
        "model_type": model.config.model_type,
        "n_params": sum(p.numel() for p in model.parameters()),  # tied weights counted once
        "dtype": str(torch_dtype).removeprefix("torch."),
        "seconds": round(time.perf_counter() - start, 3),
        "files": files,
        "source": {"file": gguf_path.name, "bytes": gguf_path.stat().st_size},
    }


def load_causal_lm(model_dir: Path, dtype: torch.dtype = torch.float32):
    """Load (model in eval mode, tokenizer) from a converted folder, locally, without remote code."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model_dir = _check_model_dir(model_dir)
    tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True, trust_remote_code=False)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype, local_files_only=True, trust_remote_code=False)
    return model.eval(), tokenizer


def greedy_continuation(model, tokenizer, prompt: str, max_new_tokens: int = 8) -> str:
    """Decode ``max_new_tokens`` tokens greedily (argmax, no sampling) after ``prompt``; return the new text.

    Stops early at the end-of-sequence token, which is not included in the text.
    """
    input_ids = tokenizer(prompt, return_tensors="pt")["input_ids"]
    eos = tokenizer.eos_token_id
    new_tokens: list[int] = []
    # No KV cache: a handful of full forward passes is cheap and avoids depending on the cache API.
    with torch.inference_mode():
        for _ in range(max_new_tokens):
            logits = model(input_ids=input_ids, use_cache=False).logits
            next_id = int(logits[0, -1].argmax())
            if eos is not None and next_id == eos:
                break
            new_tokens.append(next_id)
            input_ids = torch.cat([input_ids, torch.tensor([[next_id]], dtype=input_ids.dtype)], dim=1)
    return tokenizer.decode(new_tokens, skip_special_tokens=True)


def sliding_perplexity(
    model,
    tokenizer,
    text: str,
    window: int = 512,
    max_windows: int | None = None,
    batch_size: int = 4,
) -> dict[str, Any]:
    """Perplexity of ``model`` on ``text`` over non-overlapping windows of ``window`` tokens.

    The text is tokenised once without special tokens; the trailing partial window is dropped. Each
    window is scored on its own (``window - 1`` predicted tokens). ``max_windows`` keeps only the first
    windows. Returns ``perplexity``, ``tokens`` (tokens in the text), ``windows``, ``window``,
    ``scored_tokens``, ``dropped_tokens`` (remainder plus windows beyond ``max_windows``), ``nll_mean``
    and ``remainder_policy`` (``"drop"``). The windowing is ``repro.llm.eval.perplexity.window_nll``.
    """
    from repro.llm.eval.perplexity import window_nll

    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    counts = window_nll(
        model, ids, window=window, remainder="drop", max_windows=max_windows, batch_size=batch_size, progress=False
    )
    nll_mean = counts["total_nll"] / counts["scored_tokens"]
    return {
        "perplexity": math.exp(nll_mean),
        "nll_mean": nll_mean,
        "tokens": counts["tokens"],
        "windows": counts["windows"],
        "window": window,
        "scored_tokens": counts["scored_tokens"],
        "dropped_tokens": counts["dropped_tokens"],
        "remainder_policy": "drop",
    }


def _cmd_convert(args: argparse.Namespace) -> int:
    summary = convert_gguf_to_safetensors(Path(args.gguf), Path(args.out_dir), args.dtype, overwrite=args.overwrite)
    print(json.dumps(summary, indent=2))
    return 0


def _cmd_check(args: argparse.Namespace) -> int:
    text = None
    if args.text is not None:
        text_path = Path(args.text)
        if not text_path.is_file():
            raise ModelInputError(f"text file not found: {text_path}")
        text = text_path.read_text(encoding="utf-8")
    start = time.perf_counter()
    model, tokenizer = load_causal_lm(Path(args.model_dir))
    result: dict[str, Any] = {"load_seconds": round(time.perf_counter() - start, 3)}
    start = time.perf_counter()
    result["prompt"] = CHECK_PROMPT
    result["continuation"] = greedy_continuation(model, tokenizer, CHECK_PROMPT, max_new_tokens=args.max_new_tokens)
    result["continuation_seconds"] = round(time.perf_counter() - start, 3)
    if text is not None:
        start = time.perf_counter()
        ppl = sliding_perplexity(model, tokenizer, text, window=args.window, max_windows=args.max_windows)
        result["perplexity"] = {**ppl, "text": str(args.text), "seconds": round(time.perf_counter() - start, 3)}
    print(json.dumps(result, indent=2))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m repro.data.gguf_model", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    convert = sub.add_parser("convert", help="convert a GGUF file into a safetensors model folder")
    convert.add_argument("gguf", help="path to the .gguf file")
    convert.add_argument("out_dir", help="output folder (must not exist unless --overwrite)")
    convert.add_argument("--dtype", default="float32", choices=sorted(DTYPES))
    convert.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    convert.set_defaults(func=_cmd_convert)

    check = sub.add_parser("check", help="greedy continuation and (optionally) perplexity of a converted model")
    check.add_argument("model_dir", help="converted model folder")
    check.add_argument("--text", help="UTF-8 text file for the sliding-window perplexity")
    check.add_argument("--window", type=int, default=512)
    check.add_argument("--max-windows", type=int, default=None)
    check.add_argument("--max-new-tokens", type=int, default=8)
    check.set_defaults(func=_cmd_check)

    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ModelInputError, FileExistsError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
