"""The one-run command line: compress a saved tiny model, report counts and perplexity, save and reload."""

import json
import subprocess
import sys

import pytest
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from repro.llm.cli import main
from repro.llm.compressed import load_compressed
from repro.llm.tiny import tiny_model


@pytest.fixture
def model_dir(tmp_path):
    vocab = {f"w{i}": i for i in range(127)} | {"<unk>": 127}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    folder = tmp_path / "dense"
    tiny_model("llama").save_pretrained(folder)
    PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>").save_pretrained(folder)
    text = " ".join(f"w{(7 * i) % 127}" for i in range(3000))
    (tmp_path / "calib.txt").write_text(text)
    (tmp_path / "eval.txt").write_text(text[::-1].replace("w", " w"))
    return folder


@pytest.mark.parametrize(
    "method, extra",
    [("wanda", ["--pattern", "2:4"]), ("shortgpt", ["--ratio", "0.3"]), ("slicegpt", ["--sparsity", "0.25"])],
)
def test_compress_report_and_save(model_dir, tmp_path, capsys, method, extra):
    out = tmp_path / method
    argv = [str(model_dir), "--method", method, *extra, "--calibration", str(tmp_path / "calib.txt")]
    argv += ["--evaluation", str(tmp_path / "eval.txt"), "--n-samples", "4", "--seq-len", "32", "--window", "32"]
    assert main([*argv, "--max-windows", "4", "--out", str(out)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["dense_perplexity"] > 1 and report["compressed_perplexity"] > 1
    assert report["removed"]["removed_blocks"] > 0
    model, _, record = load_compressed(out)
    assert record["method"] == method and sum(p.numel() for p in model.parameters()) > 0


def test_bad_inputs_exit_2_naming_the_file(tmp_path):
    cmd = [sys.executable, "-m", "repro.llm.cli", str(tmp_path), "--method", "dense", "--calibration", "x.txt"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 2 and "x.txt does not exist" in proc.stderr
