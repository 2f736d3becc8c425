"""Pure parsers for offline dataset files (no network, no side effects beyond reading the given paths)."""
