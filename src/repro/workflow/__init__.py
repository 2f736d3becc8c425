"""Helpers the Snakefile uses: config validation and source digests."""

from repro.workflow.config import ConfigError, load_and_validate, validate_config
from repro.workflow.digest import module_digest

__all__ = ["ConfigError", "load_and_validate", "validate_config", "module_digest"]
