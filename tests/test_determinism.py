"""Determinism: the test tier run twice, in two directories, gives the same tables apart from timings.

The session's finished run is copied and every job of the copy rerun (``--forceall``, from the tiny
model and images on); then every Parquet table under ``results/`` (the aggregated
``results/tables/*.parquet`` and the per-job tables they come from) must be equal, value for value,
except the timing values listed in ``conftest.TIMING_METRICS`` / ``TIMING_CLAIMS`` /
``TIMING_COLUMNS``.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from conftest import TIMING_CLAIMS, TIMING_COLUMNS, TIMING_METRICS, assert_tables_equal, clone_run, run_snakemake

pytestmark = pytest.mark.workflow
CONFIG = "config/test.yaml"


@pytest.fixture(scope="module")
def second_run(finished_test_run, tmp_path_factory) -> Path:
    work = clone_run(finished_test_run, tmp_path_factory.mktemp("determinism"))
    run_snakemake(work, "--cores", "2", "--configfile", CONFIG, "--forceall")
    return work


def _tables(run: Path) -> list[str]:
    return sorted(str(p.relative_to(run)) for p in (run / "results").rglob("*.parquet"))


def test_every_table_is_reproduced_apart_from_timings(finished_test_run, second_run):
    tables = _tables(finished_test_run)
    assert tables == _tables(second_run)
    assert {"results/tables/all.parquet", "results/tables/claims.parquet", "results/tables/runtime.parquet"} <= set(
        tables
    )
    differing = []
    for table in tables:
        try:
            assert_tables_equal(finished_test_run / table, second_run / table)
        except AssertionError as err:
            differing.append(f"{table}: {str(err).splitlines()[0:6]}")
    assert not differing, "\n".join(differing)


def test_the_timing_exclusions_name_only_what_the_tables_hold(finished_test_run):
    """The exclusion lists stay narrow: each entry exists (a renamed metric must not silently widen them)."""
    tables = finished_test_run / "results" / "tables"
    metrics = set(pd.read_parquet(tables / "all.parquet")["metric"])
    assert TIMING_METRICS <= metrics, sorted(TIMING_METRICS - metrics)
    claims = set(pd.read_parquet(tables / "claims.parquet")["claim_id"])
    assert TIMING_CLAIMS <= claims, sorted(TIMING_CLAIMS - claims)
    for name, columns in TIMING_COLUMNS.items():
        assert set(columns) <= set(pd.read_parquet(tables / name).columns)
