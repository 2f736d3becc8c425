"""LLM compression substrate: architecture adapters, calibration, methods, evaluation, materialised models."""


def __getattr__(name):
    # `repro.llm.load_compressed` without importing transformers for every `repro.llm.*` import
    if name == "load_compressed":
        from repro.llm.compressed import load_compressed

        return load_compressed
    raise AttributeError(f"module 'repro.llm' has no attribute {name!r}")
