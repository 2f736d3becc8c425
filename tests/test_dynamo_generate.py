"""DynaMo's generation loop against plain autoregressive decoding on a tiny model."""

from __future__ import annotations

import pytest
import torch

from repro.dynamo.cooccurrence import CooccurrenceTable
from repro.dynamo.generate import autoregressive_generate, dynamo_generate
from repro.dynamo.heads import MultiTokenModel
from repro.dynamo.sampling import SamplingConfig
from repro.llm.tiny import tiny_model


@pytest.fixture(scope="module")
def setup():
    base = tiny_model("llama").eval()
    model = MultiTokenModel(base, n_heads=3).eval()
    vocab = base.config.vocab_size
    # every pair and triple of a small vocabulary seen: no candidate is masked out by the table
    docs = [torch.randint(0, vocab, (20_000,), generator=torch.Generator().manual_seed(0))]
    table = CooccurrenceTable.build(docs, vocab, orders=(2, 3), min_count=1)
    return base, model, table


def test_eps_one_reproduces_autoregressive_decoding_token_for_token(setup):
    base, model, table = setup
    config = SamplingConfig(eps_b=1.0)
    for seed in range(3):
        dyn = dynamo_generate(model, [1, 2, 3], 25, table, config, torch.Generator().manual_seed(seed))
        ar = autoregressive_generate(base, [1, 2, 3], 25, config, torch.Generator().manual_seed(seed))
        assert dyn.tokens == ar.tokens and dyn.step_sizes == [1] * 25
        assert dyn.forward_passes == ar.forward_passes == 25  # prefill + one pass per step but the last


def test_eps_zero_emits_three_tokens_per_step(setup):
    _, model, table = setup
    gen = dynamo_generate(model, [5, 6], 30, table, SamplingConfig(eps_b=0.0), torch.Generator().manual_seed(0))
    assert gen.step_sizes == [3] * 10 and len(gen.tokens) == 30
    assert gen.tokens_per_step == 3.0 and gen.forward_passes == 10


def test_limit_and_eos_cut_a_block(setup):
    _, model, table = setup
    gen = dynamo_generate(model, [5, 6], 7, table, SamplingConfig(eps_b=0.0), torch.Generator().manual_seed(0))
    assert len(gen.tokens) == 7 and gen.step_sizes == [3, 3, 1]
    eos = gen.tokens[4]  # the second token of the second block
    cut = dynamo_generate(
        model, [5, 6], 30, table, SamplingConfig(eps_b=0.0), torch.Generator().manual_seed(0), eos_token_id=eos
    )
    first = gen.tokens.index(eos)
    assert cut.tokens == gen.tokens[: first + 1]


def test_generation_is_deterministic_under_a_seed(setup):
    _, model, table = setup
    config = SamplingConfig(eps_b=0.3)
    a = dynamo_generate(model, [9], 20, table, config, torch.Generator().manual_seed(4))
    b = dynamo_generate(model, [9], 20, table, config, torch.Generator().manual_seed(4))
    assert a.tokens == b.tokens and a.step_sizes == b.step_sizes


def test_bad_requests_raise(setup):
    base, model, table = setup
    with pytest.raises(ValueError, match="non-empty prompt"):
        dynamo_generate(model, [], 5, table, SamplingConfig())
    with pytest.raises(ValueError, match="max_new_tokens"):
        autoregressive_generate(base, [1], 0, SamplingConfig())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_generation_through_the_fused_builder(setup):
    """On CUDA each step's levels come from the Triton joint builder; eps_b=1 still equals AR decoding
    on the same device, eps_b=0 still emits full blocks, and a middle eps_b mixes step sizes."""
    base, model, table = setup
    base_gpu = tiny_model("llama").eval().cuda()
    base_gpu.load_state_dict(base.state_dict())
    model_gpu = MultiTokenModel(base_gpu, n_heads=3).eval()
    model_gpu.load_state_dict(model.state_dict())
    cuda_gen = lambda seed: torch.Generator(device="cuda").manual_seed(seed)  # noqa: E731
    dyn = dynamo_generate(model_gpu, [1, 2, 3], 20, table, SamplingConfig(eps_b=1.0), cuda_gen(0))
    ar = autoregressive_generate(base_gpu, [1, 2, 3], 20, SamplingConfig(eps_b=1.0), cuda_gen(0))
    assert dyn.tokens == ar.tokens and dyn.step_sizes == [1] * 20
    full = dynamo_generate(model_gpu, [5, 6], 30, table, SamplingConfig(eps_b=0.0), cuda_gen(0))
    assert full.step_sizes == [3] * 10
    mixed = dynamo_generate(model_gpu, [9], 40, table, SamplingConfig(eps_b=0.3), cuda_gen(1))
    assert len(mixed.tokens) == 40 and all(1 <= s <= 3 for s in mixed.step_sizes)


def test_heads_disabled_top1_is_plain_greedy_decoding(setup):
    """max_tokens=1 (heads 2..n never used) with top_k=1 and no repetition penalty is greedy
    decoding: token for token what Hugging Face's generate(do_sample=False) emits."""
    base, model, table = setup
    config = SamplingConfig(max_tokens=1, top_k=1, repetition_penalty=1.0)
    for prompt in ([1, 2, 3], [40, 7], [99]):
        dyn = dynamo_generate(model, prompt, 24, table, config, torch.Generator().manual_seed(0))
        with torch.no_grad():
            out = base.generate(
                torch.tensor([prompt]),
                attention_mask=torch.ones(1, len(prompt), dtype=torch.long),
                max_new_tokens=24,
                min_new_tokens=24,
                do_sample=False,
                pad_token_id=0,
            )
        assert dyn.tokens == out[0, len(prompt) :].tolist()
        assert dyn.step_sizes == [1] * 24
