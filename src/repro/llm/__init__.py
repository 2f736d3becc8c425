"""LLM structural compression: architecture adapters, parameter accounting, tiny test models and methods."""
