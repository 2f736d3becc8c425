"""Every job of a workflow's DAG with its params, files and dependencies, as plain data.

``python -m repro.workflow.dag --directory RUN [--configfile FILE] [--out FILE] [TARGET ...]`` writes a
JSON list with one object per job (finished or not)::

    {"key": "rule[k=v,...]", "rule": ..., "wildcards": {...}, "params": {name: JSON text},
     "input": [...], "output": [...], "deps": [key, ...]}

The incremental-rerun tests use it to derive which jobs a change must rerun (those whose params
or inputs changed, and everything downstream of them) independently of Snakemake's own rerun
decision, which they then compare with what ``snakemake -n`` plans.  It builds the DAG through
Snakemake's Python API (``_prepare_dag``/``_build_dag`` as ``snakemake --dag`` does, with
``forceall`` so finished jobs are kept); it writes nothing and takes no lock.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path


def job_counts(output: str) -> dict[str, int]:
    """Rule -> job count from the 'Job stats' table that ``snakemake -n`` prints (empty when nothing is
    planned; the last table wins when Snakemake prints it twice)."""
    counts: dict[str, int] = {}
    in_table = False
    for line in output.splitlines():
        if line.startswith("Job stats"):
            in_table, counts = True, {}
            continue
        parts = line.split()
        if in_table and len(parts) == 2 and parts[1].isdigit():
            if parts[0] == "total":
                in_table = False
            else:
                counts[parts[0]] = int(parts[1])
    return counts


def job_key(rule: str, wildcards: Mapping[str, str]) -> str:
    """A job's name: its rule and its wildcards sorted by name, e.g. ``sweep_heavy_ball[function=pl_sin2]``."""
    return f"{rule}[{','.join(f'{k}={v}' for k, v in sorted(wildcards.items()))}]"


def _param_text(value) -> str:
    return json.dumps(value, sort_keys=True, default=repr)


def dag_jobs(
    directory: Path | str,
    configfiles: Sequence[Path | str] = (),
    targets: Iterable[str] = (),
    snakefile: Path | str | None = None,
) -> list[dict]:
    """The jobs of the DAG of ``snakefile`` (default ``<directory>/Snakefile``) run in ``directory``."""
    from snakemake.api import SnakemakeApi
    from snakemake.settings.types import (
        ConfigSettings,
        DAGSettings,
        OutputSettings,
        Quietness,
        ResourceSettings,
    )

    directory = Path(directory).resolve()
    snakefile = Path(snakefile).resolve() if snakefile else directory / "Snakefile"
    configs = [(directory / c).resolve() for c in configfiles]
    with SnakemakeApi(OutputSettings(quiet={Quietness.ALL})) as api:
        workflow_api = api.workflow(
            resource_settings=ResourceSettings(cores=1),
            config_settings=ConfigSettings(configfiles=configs),
            snakefile=snakefile,
            workdir=directory,
        )
        dag_api = workflow_api.dag(DAGSettings(targets=frozenset(targets), forceall=True))
        workflow = dag_api.workflow_api._workflow
        workflow._prepare_dag(forceall=True, ignore_incomplete=True, lock_warn_only=True, nolock=True)
        workflow._build_dag()
        dag = workflow.dag
        keys = {job: job_key(job.rule.name, dict(job.wildcards_dict)) for job in dag.jobs}
        jobs = []
        for job, key in sorted(keys.items(), key=lambda item: item[1]):
            params = dict(job.params.items())
            jobs.append(
                {
                    "key": key,
                    "rule": job.rule.name,
                    "wildcards": dict(job.wildcards_dict),
                    "params": {name: _param_text(value) for name, value in sorted(params.items())},
                    "input": sorted(str(f) for f in job.input),
                    "output": sorted(str(f) for f in job.output),
                    "deps": sorted(keys[dep] for dep in dag.dependencies[job]),
                }
            )
    return jobs


def downstream(jobs: Iterable[Mapping], roots: Iterable[str]) -> set[str]:
    """``roots`` and every job that depends on one of them, transitively (by job key)."""
    users: dict[str, set[str]] = {}
    for job in jobs:
        for dep in job["deps"]:
            users.setdefault(dep, set()).add(job["key"])
    found, todo = set(), list(roots)
    while todo:
        key = todo.pop()
        if key not in found:
            found.add(key)
            todo.extend(users.get(key, ()))
    return found


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m repro.workflow.dag", description=__doc__.splitlines()[0])
    parser.add_argument("--directory", type=Path, default=Path("."), help="the run directory (default: .)")
    parser.add_argument("--snakefile", type=Path, default=None, help="default: <directory>/Snakefile")
    parser.add_argument("--configfile", type=Path, action="append", default=[], help="relative to --directory")
    parser.add_argument("--out", type=Path, default=None, help="write the JSON here (default: stdout)")
    parser.add_argument("targets", nargs="*", help="target files or rules (default: the default target)")
    args = parser.parse_args(argv)
    text = json.dumps(dag_jobs(args.directory, args.configfile, args.targets, args.snakefile), indent=1) + "\n"
    if args.out:
        args.out.write_text(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
