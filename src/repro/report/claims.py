"""The claims table: one row per headline claim, with ``holds`` computed from measurements.

Each paper registers a function ``table -> list[Claim]`` in ``CLAIM_FUNCTIONS``.  A claim
whose measurement is impossible with the configured experiments (say, beta = 0.9 was
not run) is still listed, with ``measured`` NaN and ``holds`` missing, so that a
reader sees what was not checked instead of a silently shorter table.
"""

from __future__ import annotations

import importlib
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

# pandas is imported inside the functions: the workflow imports this module at parse time for the
# registry below, and every `snakemake -n` would otherwise pay for pandas.

CLAIM_COLUMNS = ["paper", "claim_id", "claim", "paper_value", "measured", "comparison", "holds", "tier", "detail"]

# paper id -> "module:function" computing its claims from the paper's aggregated table
CLAIM_FUNCTIONS = {
    "stochastic_momentum": "repro.optim.saddle_claims:stochastic_momentum_claims",
    "heavy_ball": "repro.optim.heavy_ball_claims:heavy_ball_claims",
    "llm_compression": "repro.llm.claims:llm_compression_claims",
    "modegpt": "repro.llm.modegpt_report:modegpt_claims",
    "disp_llm": "repro.llm.disp_report:disp_llm_claims",
    "dynamo": "repro.dynamo.report:dynamo_claims",
    "halfhop": "repro.graphs.report:halfhop_claims",
    "swap_vae": "repro.neural.report:swap_vae_claims",
    "myow": "repro.neural.report:myow_claims",
    "spectral_imbalance": "repro.spectral.report:spectral_imbalance_claims",
    "data_augmentation": "repro.augtheory.report:data_augmentation_claims",
}

#: paper -> other papers' tables its claims also read (MoDeGPT's evaluation rows sit with the baselines).
CLAIM_EXTRA_TABLES = {"modegpt": ["llm_compression"], "disp_llm": ["llm_compression"]}


@dataclass
class Claim:
    claim_id: str
    claim: str
    paper_value: str  # as the paper (or its theorem) states it
    measured: float
    comparison: str  # the test applied to ``measured``, in words
    holds: bool | None  # None: could not be measured here
    detail: str = ""


def claim_function(paper: str):
    try:
        target = CLAIM_FUNCTIONS[paper]
    except KeyError:
        raise ValueError(f"no claims registered for paper {paper!r}; known: {sorted(CLAIM_FUNCTIONS)}") from None
    module, name = target.split(":")
    return getattr(importlib.import_module(module), name)


def claims_frame(claims: list[Claim], paper: str, tier: str) -> pd.DataFrame:
    import pandas as pd

    rows = []
    for c in claims:
        holds = (
            pd.NA if c.holds is None or (isinstance(c.measured, float) and math.isnan(c.measured)) else bool(c.holds)
        )
        rows.append(
            {
                "paper": paper,
                "claim_id": c.claim_id,
                "claim": c.claim,
                "paper_value": c.paper_value,
                "measured": float(c.measured),
                "comparison": c.comparison,
                "holds": holds,
                "tier": tier,
                "detail": c.detail,
            }
        )
    df = pd.DataFrame(rows, columns=CLAIM_COLUMNS)
    df = df.astype({c: "string" for c in CLAIM_COLUMNS if c not in ("measured", "holds")})
    df["holds"] = df["holds"].astype("boolean")
    return df


def compute_claims(paper: str, table_path, output, tier: str, extra_tables=()) -> pd.DataFrame:
    """Claims of ``paper`` from its table plus ``extra_tables`` (other papers' tables it compares with)."""
    import pandas as pd

    from repro.io import write_parquet

    table = pd.concat([pd.read_parquet(p) for p in (table_path, *extra_tables)], ignore_index=True)
    df = claims_frame(claim_function(paper)(table), paper, tier)
    write_parquet(df, output)
    return df


def combine_claims(paths, output) -> pd.DataFrame:
    import pandas as pd

    from repro.io import write_parquet

    df = pd.concat([pd.read_parquet(p) for p in paths], ignore_index=True)
    df = df.sort_values(["paper", "claim_id"], kind="stable").reset_index(drop=True)
    write_parquet(df, output)
    return df
