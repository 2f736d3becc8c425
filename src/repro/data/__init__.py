"""Data layer: pinned external artifacts, their manifest, and the prepared datasets built from them."""
