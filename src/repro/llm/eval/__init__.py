"""Evaluation of (compressed) causal LMs: perplexity, zero-shot accuracy, speed, and their result rows."""
