"""DynaMo (NAACL 2024): multi-token heads, co-occurrence statistics and dynamic multi-token decoding."""
