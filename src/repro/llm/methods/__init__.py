"""Compression methods, each written once against the architecture adapters."""
