#!/usr/bin/env python
"""Time a no-change ``snakemake -n`` on a finished run directory (what ``make dry-run`` costs).

    .venv/bin/python scripts/bench_noop_dryrun.py --directory RUN [--configfile config/config.yaml]
        [--repeats 3] [--json out.json] [--profile out.prof]

RUN is a working directory whose workflow has run to completion (default: this checkout, which
uses the default tier, ``config/config.yaml``); its own ``Snakefile`` is used when it has one. Each
repeat runs ``snakemake -n`` in a fresh process and records the wall time and the CPU time (user +
system) of that process; ``snakemake --version`` is timed once as the start-up floor (interpreter
and Snakemake imports). CPU time is the better number on a busy machine. The dry run must plan
nothing ("Nothing to be done"); otherwise the planned jobs are reported and the exit status is 1.
``--profile`` runs one more dry run under cProfile, saves the stats and prints the top entries.
Nothing in RUN is written (a dry run takes no lock).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))  # also without an installed package
from repro.workflow.dag import job_counts  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = Path(sys.executable).with_name("snakemake")


def timed(cmd: list[str], cwd: Path) -> dict:
    """Run ``cmd``; its wall time, CPU time (user + system of the child) and output."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall_s": wall, "cpu_s": cpu, "returncode": proc.returncode, "output": proc.stdout + proc.stderr}


def dryrun_command(directory: Path, snakefile: Path, configfile: str | None, extra: list[str]) -> list[str]:
    cmd = [str(SNAKEMAKE), "-n", "--snakefile", str(snakefile), "--directory", str(directory), *extra]
    return cmd + ["--configfile", configfile] if configfile else cmd  # last: it takes several values


def bench(
    directory: Path, configfile: str | None = None, repeats: int = 3, snakefile: Path | None = None, extra=()
) -> dict:
    """Time ``repeats`` no-op dry runs in ``directory``; see the module docstring."""
    directory = Path(directory).resolve()
    if snakefile is None:
        snakefile = directory / "Snakefile" if (directory / "Snakefile").is_file() else ROOT / "Snakefile"
    cmd = dryrun_command(directory, Path(snakefile), configfile, list(extra))
    startup = timed([str(SNAKEMAKE), "--version"], directory)
    runs = [timed(cmd, directory) for _ in range(repeats)]
    failed = [r for r in runs if r["returncode"] != 0]
    if failed:
        raise RuntimeError(f"{' '.join(cmd)} failed ({failed[0]['returncode']}):\n{failed[0]['output'][-4000:]}")
    last = runs[-1]["output"]
    return {
        "directory": str(directory),
        "snakefile": str(snakefile),
        "configfile": configfile,
        "command": cmd,
        "repeats": repeats,
        "wall_s": [round(r["wall_s"], 3) for r in runs],
        "cpu_s": [round(r["cpu_s"], 3) for r in runs],
        "median_wall_s": round(statistics.median(r["wall_s"] for r in runs), 3),
        "median_cpu_s": round(statistics.median(r["cpu_s"] for r in runs), 3),
        "startup_wall_s": round(startup["wall_s"], 3),
        "startup_cpu_s": round(startup["cpu_s"], 3),
        "nothing_to_do": "Nothing to be done" in last,
        "planned": job_counts(last),
        "load_average": os.getloadavg()[0],
    }


def profile(cmd: list[str], cwd: Path, out: Path, top: int = 30) -> str:
    """Run the dry run once under cProfile; save the stats to ``out`` and return the top entries."""
    subprocess.run([sys.executable, "-m", "cProfile", "-o", str(out), *cmd], cwd=cwd, capture_output=True, check=True)
    import io
    import pstats

    text = io.StringIO()
    pstats.Stats(str(out), stream=text).sort_stats("cumulative").print_stats(top)
    return text.getvalue()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--directory", type=Path, default=ROOT, help="a finished run directory (default: this checkout)"
    )
    parser.add_argument("--configfile", default=None, help="as given to snakemake, relative to --directory")
    parser.add_argument("--snakefile", type=Path, default=None, help="default: <directory>/Snakefile, else this one")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path, default=None, help="also write the result here")
    parser.add_argument("--profile", type=Path, default=None, help="save cProfile stats of one more dry run here")
    parser.add_argument("extra", nargs="*", help="more snakemake arguments (after --)")
    args = parser.parse_args(argv)
    result = bench(args.directory, args.configfile, args.repeats, args.snakefile, args.extra)
    print(f"no-op dry run in {result['directory']} ({args.configfile or 'the Snakefile default config'})")
    print(f"  wall s: {result['wall_s']}  (median {result['median_wall_s']})")
    print(f"  cpu s:  {result['cpu_s']}  (median {result['median_cpu_s']})")
    print(f"  snakemake --version: {result['startup_wall_s']} s wall, {result['startup_cpu_s']} s cpu")
    print(f"  load average: {result['load_average']:.1f}")
    if result["nothing_to_do"]:
        print("  nothing to be done")
    else:
        print(f"  NOT a no-op: {sum(result['planned'].values())} job(s) planned: {result['planned']}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    if args.profile:
        print(profile(result["command"], Path(result["directory"]), args.profile))
    return 0 if result["nothing_to_do"] else 1


if __name__ == "__main__":
    sys.exit(main())
