"""The compressed-LLM speed benchmark runs end to end on a tiny random LLaMA (CPU); timings are not asserted."""

import math

import pytest
import torch

from repro.bench.compressed_llm import random_llama, run_compressed_llm_benchmark, run_sparse_gemm_benchmark


def test_random_llama_has_the_preset_dimensions():
    model = random_llama("tiny", 2, torch.float32, torch.device("cpu"))
    assert model.config.num_hidden_layers == 2
    assert model.model.layers[0].mlp.down_proj.weight.shape == (64, 128)  # (out, in)
    with pytest.raises(ValueError, match="unknown preset"):
        random_llama("llama-9000", 2, torch.float32, torch.device("cpu"))


def test_benchmark_rows_on_cpu():
    df = run_compressed_llm_benchmark(
        preset="tiny",
        layers=2,
        device="cpu",
        dtype="float32",
        prefill_len=16,
        decode_tokens=3,
        repeats=1,
        calibration_samples=2,
        calibration_len=16,
    )
    value = df.set_index(["method", "metric"])["value"]
    # 2:4 pruning holds exactly and on CPU the model keeps dense kernels (said in the rows)
    assert value[("sparsegpt-2of4", "nm_groups_violating")] == 0
    assert value[("sparsegpt-2of4", "achieved_sparsity")] == pytest.approx(0.5)
    assert set(df.loc[df.method == "sparsegpt-2of4", "sparse_kernels"]) == {"none (dense kernels)"}
    # SVD-LLM reaches its 20 % target within 2 % (as the pipeline's target check)
    assert abs(value[("svd_llm-0.20", "achieved_removed")] - 0.2) < 0.02
    for method in ("sparsegpt-2of4", "svd_llm-0.20"):
        assert value[(method, "prefill_tok_s")] > 0 and value[(method, "dense_prefill_tok_s")] > 0
    assert set(df.device) == {"cpu"} and set(df.layers) == {2}


def test_sparse_gemm_on_cpu_reports_why_no_sparse_kernel():
    df = run_sparse_gemm_benchmark(device="cpu", dtype="float32", tokens=(1, 8), repeats=1, linears={"x": (32, 64)})
    assert len(df) == 4 and set(df.backend) == {"cusparselt", "cutlass"} and (df.dense_ms > 0).all()
    assert df.sparse_ms.map(math.isnan).all() and (df.note == "semi-structured kernels need CUDA").all()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"preset": "nope"}, "unknown preset"),
        ({"methods": ("foo",)}, "unknown methods"),
        ({"dtype": "int8"}, "floating"),
    ],
)
def test_bad_benchmark_settings_are_named(kwargs, message):
    settings = {"preset": "tiny", "layers": 1, "device": "cpu", "dtype": "float32", **kwargs}
    with pytest.raises(ValueError, match=message):
        run_compressed_llm_benchmark(**settings)
