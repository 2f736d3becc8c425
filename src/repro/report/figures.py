"""One figure style for the whole report; every figure is saved as PNG and PDF."""

from __future__ import annotations

import functools
from contextlib import contextmanager
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from repro.io import atomic_path  # noqa: E402

STYLE = {
    "figure.dpi": 110,
    "savefig.dpi": 150,
    "savefig.bbox": "tight",
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "legend.frameon": False,
    "legend.fontsize": 9,
    "lines.linewidth": 1.6,
    "axes.prop_cycle": matplotlib.cycler(
        color=["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]
    ),
}


@contextmanager
def figure_style():
    with plt.rc_context(STYLE):
        yield


def styled(fn):
    """Decorator: run a plotting function inside :func:`figure_style`."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with figure_style():
            return fn(*args, **kwargs)

    return wrapper


def save_figure(fig, png_path) -> None:
    """Write ``png_path`` and the same figure as ``.pdf`` beside it, atomically; close the figure."""
    png_path = Path(png_path)
    try:
        for path in (png_path, png_path.with_suffix(".pdf")):
            with atomic_path(path) as tmp:
                fig.savefig(tmp, format=path.suffix[1:])
    finally:
        plt.close(fig)


def sequential_colors(n: int, cmap: str = "viridis"):
    """n colours along a perceptually uniform map (for an ordered parameter such as beta)."""
    return [plt.get_cmap(cmap)(x) for x in ([0.5] if n == 1 else [0.05 + 0.85 * i / (n - 1) for i in range(n)])]
