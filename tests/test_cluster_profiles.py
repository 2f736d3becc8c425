"""Cluster profiles (issue 11): resource estimates, the GPU requests of profiles/slurm and
profiles/kubernetes, paper-tier dry runs through both executor plugins, and test-tier jobs that
go through the real SLURM plugin against stand-in sbatch / sacct / squeue / srun / scancel / sinfo /
scontrol commands that run each job at once on this machine."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import ROOT, SNAKEMAKE, copy_workflow, run_snakemake
from repro.report.rows import validate_table

RESOURCE_BLOCK = "# Cluster resources (issue 11)"
PROFILES = {
    "slurm": ["snakemake_executor_plugin_slurm"],
    "kubernetes": ["snakemake_executor_plugin_kubernetes", "snakemake_storage_plugin_fs"],
}


def needs_plugins(profile: str):
    missing = [m for m in PROFILES[profile] if importlib.util.find_spec(m) is None]
    return pytest.mark.skipif(
        bool(missing),
        reason=f"{', '.join(missing)} not importable: pip install -e '.[cluster]' (or '.[dev]')",
    )


def resource_helpers() -> dict:
    """The plain-Python helpers at the end of workflow/rules/common.smk, run outside Snakemake."""
    text = (ROOT / "workflow" / "rules" / "common.smk").read_text()
    namespace = {"Path": Path}
    exec(compile(text[text.index(RESOURCE_BLOCK) :], "common.smk (cluster resources)", "exec"), namespace)
    return namespace


def profile(name: str) -> dict:
    return yaml.safe_load((ROOT / "profiles" / name / "config.yaml").read_text())


def gpu_rules(name: str) -> set[str]:
    return {rule for rule, res in profile(name)["set-resources"].items() if res.get("gpu")}


def rules_declaring_gpu() -> set[str]:
    """Rules whose resources block declares `gpu` (workflow/rules/*.smk)."""
    found = set()
    for path in (ROOT / "workflow" / "rules").glob("*.smk"):
        for block in re.split(r"^rule ", path.read_text(), flags=re.M)[1:]:
            name = block.split(":", 1)[0]
            if re.search(r"^    resources:\n(?:        .*\n)*?        gpu=", block, flags=re.M):
                found.add(name)
    return found


LLAMA2_7B = {
    "model_type": "llama",
    "hidden_size": 4096,
    "intermediate_size": 11008,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 32,
    "vocab_size": 32000,
    "tie_word_embeddings": False,
}


def test_llama2_7b_estimates():
    h = resource_helpers()
    shape = h["shape_from_config"](LLAMA2_7B)
    # linear and embedding weights (the 65 RMSNorm vectors, 266,240 parameters, are not counted)
    assert shape["params"] == 6_738_149_376
    calibration = {"n_samples": 128, "seq_len": 2048, "seed": 0, "batch_size": 4}
    gpu, host, seconds = h["llm_stage_estimate"]("calibrate", shape, "float16", calibration)
    statistics = 32 * (4 * 4096**2 + 11008**2) * 8  # resid/attn/mlp in, attn mid (d x d), mlp mid
    assert statistics == 48_200_941_568
    assert host == 2 * shape["params"] + statistics + h["ESTIMATE_HOST_BASE"]
    assert h["estimate_mem_mb"](gpu, host, False) == 79_000
    assert 20e9 < gpu < 30e9 and seconds > 0
    # with device cpu the model's GPU share moves to host memory
    assert h["estimate_mem_mb"](gpu, host, True) > h["estimate_mem_mb"](gpu, host, False)
    gpu, host, _ = h["llm_stage_estimate"]("params", shape, "float16", {})
    assert gpu == 0 and host == 4 * shape["params"] + h["ESTIMATE_HOST_BASE"]
    assert h["estimate_runtime"](0) == 15 and h["estimate_runtime"](600) == 45


def test_model_size_from_names_and_devices():
    h = resource_helpers()
    sizes = {
        "resources/artifacts/llama2_7b": 7e9,
        "resources/artifacts/opt_1_3b": 1.3e9,
        "resources/artifacts/pythia_6_9b": 6.9e9,
        "resources/models/smollm2-135m-instruct": 135e6,
        "meta-llama/Meta-Llama-3-8B": 8e9,
        "resources/tiny/model": None,
    }
    assert {name: h["size_from_name"](name) for name in sizes} == pytest.approx(sizes)
    # no config.json and no size in the path: the artifact's repo_id, then a 7B default
    artifacts = {"opt_x": {"repo_id": "facebook/opt-350m"}}
    assert h["model_shape"]("resources/artifacts/opt_x", artifacts)["params"] == 350e6
    assert h["model_shape"]("resources/nowhere")["params"] == 7e9
    assert [h["device_gpus"]({"device": d}) for d in ("auto", "cpu", "cuda", "cuda:1")] == [0, 0, 1, 1]
    assert h["device_gpus"]({}) == 0


def test_model_shape_reads_config_json(tmp_path):
    h = resource_helpers()
    (tmp_path / "config.json").write_text(json.dumps(LLAMA2_7B))
    assert h["model_shape"](tmp_path)["params"] == 6_738_149_376


def test_profiles_ask_for_gpus_one_way():
    """Both profiles list every rule that declares `gpu`; SLURM uses the `gpu` resource only (no
    gres, no GPU setting in default-resources); Kubernetes names the GPU manufacturer."""
    declared = rules_declaring_gpu()
    assert {"calibrate_llm", "compress_llm", "evaluate_llm_perplexity", "evaluate_llm_zeroshot"} <= declared
    assert {"evaluate_llm_speed", "dynamo_train", "dynamo_perplexity", "dynamo_decoding"} <= declared
    assert "evaluate_llm_params" not in declared and "dynamo_cooccurrence" not in declared
    slurm, kubernetes = profile("slurm"), profile("kubernetes")
    assert slurm["executor"] == "slurm" and kubernetes["executor"] == "kubernetes"
    for prof in (slurm, kubernetes):
        assert declared <= gpu_rules(prof["executor"])
        assert all(res.get("gpu", 1) == 1 for res in prof["set-resources"].values())
        assert not any(r.split("=")[0] in ("gpu", "gpu_model", "gres") for r in prof["default-resources"])
        assert not any("gres" in res for res in prof["set-resources"].values())
        assert {"jobs", "latency-wait", "default-resources", "set-resources"} <= set(prof)
    for rule, res in kubernetes["set-resources"].items():
        assert res.get("gpu_manufacturer") == "nvidia", rule
    assert gpu_rules("slurm") == gpu_rules("kubernetes")


def dry_run_resources(output: str) -> list[tuple[str, dict[str, str]]]:
    """(rule, resources) of every job that `snakemake -n` prints."""
    jobs, rule = [], None
    for line in output.splitlines():
        match = re.match(r"^(?:local)?rule (\w+):", line)
        if match:
            rule = match.group(1)
        elif rule and line.strip().startswith("resources:"):
            items = [i.split("=", 1) for i in line.split(":", 1)[1].split(", ")]
            jobs.append((rule, {k.strip(): v.strip() for k, v in items}))
            rule = None
    return jobs


@pytest.mark.workflow
@pytest.mark.parametrize("name", ["slurm", pytest.param("kubernetes", marks=needs_plugins("kubernetes"))])
@needs_plugins("slurm")
def test_paper_tier_dry_run_through_cluster_profile(name, tmp_path):
    """`snakemake -n --configfile config/paper.yaml --profile profiles/<name>` (no local profile):
    GPU rules ask for one GPU, every other job for none."""
    proc = run_snakemake(
        ROOT,
        "-n",
        "--configfile",
        str(ROOT / "config" / "paper.yaml"),
        "--profile",
        str(ROOT / "profiles" / name),
        "--directory",
        str(tmp_path),
    )
    jobs = dry_run_resources(proc.stdout)
    assert len(jobs) > 100
    wanted = gpu_rules(name)
    assert {rule for rule, _ in jobs} & wanted >= {"calibrate_llm", "compress_llm", "evaluate_llm_speed"}
    for rule, resources in jobs:
        assert (resources.get("gpu") == "1") == (rule in wanted), (rule, resources)
        if name == "kubernetes" and rule in wanted:
            assert resources["gpu_manufacturer"] == "nvidia"
    calibrate = next(res for rule, res in jobs if rule == "calibrate_llm")
    assert int(calibrate["mem_mb"]) > 60_000 and int(calibrate["runtime"]) >= 30  # a 7B model


# ------------------------------------------------------------------------------------------------
# SLURM stand-ins: sbatch starts the --wrap command in the background (new session) and prints the
# job id; sacct / squeue report the states of the jobs of a --name; srun runs its command; the
# states live in $FAKE_SLURM_STATE/jobs/<id>.json, every call is logged to calls.jsonl.
FAKE_SLURM = r"""
import fcntl, json, os, signal, subprocess, sys
from pathlib import Path

STATE = Path(os.environ["FAKE_SLURM_STATE"])


def option(argv, name):
    for i, arg in enumerate(argv):
        if arg == name and i + 1 < len(argv):
            return argv[i + 1]
        if name.startswith("--") and arg.startswith(name + "="):
            return arg[len(name) + 1:]
    return None


def log_call(cmd, argv):
    with open(STATE / "calls.jsonl", "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        f.write(json.dumps({"cmd": cmd, "argv": argv}) + "\n")


def update(jobid, **fields):
    path = STATE / "jobs" / f"{jobid}.json"
    data = json.loads(path.read_text()) if path.exists() else {}
    data.update(fields)
    tmp = path.with_name(f"{jobid}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)


def jobs():
    for path in sorted((STATE / "jobs").glob("*.json")):
        yield path.stem, json.loads(path.read_text())


def sbatch(argv):
    with open(STATE / "counter", "a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        f.seek(0)
        jobid = int(f.read() or 1000) + 1
        f.seek(0)
        f.truncate()
        f.write(str(jobid))
    command, workdir = option(argv, "--wrap"), option(argv, "-D") or os.getcwd()
    output = (option(argv, "--output") or str(STATE / "%j.out")).replace("%j", str(jobid))
    update(jobid, name=option(argv, "--job-name"), state="PENDING", argv=argv)
    env = {**os.environ, "SLURM_JOB_ID": str(jobid), "SLURM_JOBID": str(jobid)}
    if option(argv, "--gpus"):
        env["SLURM_GPUS"] = option(argv, "--gpus")
    subprocess.Popen([sys.executable, __file__, "run", str(jobid), command, workdir, output], env=env,
                     start_new_session=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                     stderr=subprocess.DEVNULL)
    print(jobid)
    return 0


def run(jobid, command, workdir, output):
    update(jobid, state="RUNNING", pid=os.getpid())
    with open(output, "w") as out:
        rc = subprocess.call(["bash", "-c", command], cwd=workdir, stdin=subprocess.DEVNULL,
                             stdout=out, stderr=subprocess.STDOUT)
    update(jobid, state="COMPLETED" if rc == 0 else "FAILED", exit_code=rc)
    return 0


def states(argv):
    name = option(argv, "--name")
    for jobid, job in jobs():
        if name is not None and job.get("name") == name:
            print(f"{jobid}|{job['state']}")
    return 0


def srun(argv):
    while argv and argv[0].startswith("-"):
        argv = argv[1:]
    os.execvp(argv[0], argv)


def scancel(argv):
    for jobid in (a for a in argv if a.isdigit()):
        path = STATE / "jobs" / f"{jobid}.json"
        if path.exists():
            pid = json.loads(path.read_text()).get("pid")
            update(jobid, state="CANCELLED")
            if pid:
                try:
                    os.killpg(pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
    return 0


def main(cmd, argv):
    if cmd == "sbatch" and argv[:1] == ["run"]:
        return run(*argv[1:])
    log_call(cmd, argv)
    if cmd == "sbatch":
        return sbatch(argv)
    if cmd in ("sacct", "squeue"):
        return states(argv)
    if cmd == "srun":
        return srun(argv)
    if cmd == "scancel":
        return scancel(argv)
    if cmd == "sinfo":
        print("PARTITION\nlocal*")
    if cmd == "scontrol" and argv[:2] == ["show", "config"]:
        print("MinJobAge               = 300 sec\nMaxArraySize            = 1001")
    return 0


if __name__ == "__main__":
    sys.exit(main("sbatch", sys.argv[1:]))
"""
FAKE_COMMANDS = ["sbatch", "sacct", "squeue", "srun", "scancel", "sinfo", "scontrol"]


def install_fake_slurm(bin_dir: Path, state: Path) -> None:
    bin_dir.mkdir()
    (state / "jobs").mkdir(parents=True)
    (bin_dir / "fake_slurm.py").write_text(FAKE_SLURM)
    for cmd in FAKE_COMMANDS:
        script = bin_dir / cmd
        script.write_text(
            f"#!{sys.executable}\nimport sys\nsys.path.insert(0, {str(bin_dir)!r})\n"
            f"from fake_slurm import main\nsys.exit(main({cmd!r}, sys.argv[1:]))\n"
        )
        script.chmod(0o755)


def stop_fake_jobs(state: Path) -> None:
    """End the process groups of stand-in jobs that still run (this test started them)."""
    for path in (state / "jobs").glob("*.json"):
        job = json.loads(path.read_text())
        if job.get("state") == "RUNNING" and job.get("pid"):
            try:
                os.killpg(job["pid"], signal.SIGTERM)
            except ProcessLookupError:
                pass


def sbatch_rule(argv: list[str]) -> str:
    comment = argv[argv.index("--comment") + 1]
    assert comment.startswith("rule_"), comment
    return comment[len("rule_") :].split("_wildcards_")[0]


SLURM_TARGETS = [
    "results/papers/heavy_ball.done",
    "results/llm/tiny/calibration/tiny_train.parquet",
    "results/llm/tiny/eval/dense/perplexity.parquet",
]
SLURM_JOBS = {
    "sweep_heavy_ball",
    "plot_heavy_ball",
    "aggregate_paper",
    "compute_claims",
    "prepare_tiny_llm",
    "calibrate_llm",
    "evaluate_llm_perplexity",
}


@pytest.mark.workflow
@needs_plugins("slurm")
def test_test_tier_jobs_go_through_the_slurm_plugin(tmp_path):
    """A slice of the test tier (Heavy Ball's paper target, the tiny Llama's calibration and dense
    perplexity) with `--workflow-profile profiles/slurm`: every non-local job is submitted with
    sbatch, polled with sacct and run through srun; only GPU rules ask for a GPU."""
    (tmp_path / "work").mkdir()
    work = copy_workflow(tmp_path / "work")
    bin_dir, state = tmp_path / "bin", tmp_path / "slurm"
    install_fake_slurm(bin_dir, state)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "SBATCH_", "SRUN_"))}
    env.update(PATH=f"{bin_dir}{os.pathsep}{env['PATH']}", FAKE_SLURM_STATE=str(state), PYTHONUNBUFFERED="1")
    cmd = [SNAKEMAKE, *SLURM_TARGETS, "--configfile", "config/test.yaml", "--workflow-profile", "profiles/slurm"]
    cmd += ["--jobs", "3", "--latency-wait", "5", "--slurm-init-seconds-before-status-checks", "1"]
    try:
        proc = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, timeout=2400)
    finally:
        stop_fake_jobs(state)
    assert proc.returncode == 0, proc.stdout + proc.stderr

    calls = [json.loads(line) for line in (state / "calls.jsonl").read_text().splitlines()]
    submissions = [c["argv"] for c in calls if c["cmd"] == "sbatch"]
    by_rule = {sbatch_rule(argv): argv for argv in submissions}
    assert len(submissions) == len(by_rule) == len(SLURM_JOBS) and set(by_rule) == SLURM_JOBS
    gpu = gpu_rules("slurm")
    for rule, argv in by_rule.items():
        gpu_args = [a for a in argv if a.startswith(("--gpus", "--gres"))]
        assert gpu_args == (["--gpus=1"] if rule in gpu else []), (rule, argv)
        assert "--parsable" in argv and "--mem" in argv and "-t" in argv and "--wrap" in " ".join(argv)
    # every job finished through the plugin's path: one run id, polled with sacct, run by srun
    run_ids = {argv[argv.index("--job-name") + 1] for argv in submissions}
    assert len(run_ids) == 1
    polls = [c["argv"] for c in calls if c["cmd"] == "sacct" and "--name" in c["argv"]]
    assert polls and all(p[p.index("--name") + 1] in run_ids for p in polls)
    assert sum(c["cmd"] == "srun" for c in calls) == len(SLURM_JOBS)
    assert {json.loads(p.read_text())["state"] for p in (state / "jobs").glob("*.json")} == {"COMPLETED"}

    # mem_mb and runtime of calibrate_llm were computed from the prepared model's config.json
    h = resource_helpers()
    config = yaml.safe_load((work / "config" / "test.yaml").read_text())["llm_compression"]
    shape = h["model_shape"](work / config["models"]["tiny"]["path"])
    options = {"batch_size": 4, **config["calibration"]["tiny_train"]}
    gpu_bytes, host, seconds = h["llm_stage_estimate"]("calibrate", shape, "float32", options)
    argv = by_rule["calibrate_llm"]
    assert argv[argv.index("--mem") + 1] == str(h["estimate_mem_mb"](gpu_bytes, host, False))
    assert argv[argv.index("-t") + 1] == str(h["estimate_runtime"](seconds))

    assert (work / "results" / "papers" / "heavy_ball.done").exists()
    for table in (
        "results/tables/heavy_ball.parquet",
        "results/claims/heavy_ball.parquet",
        "results/llm/tiny/calibration/tiny_train.parquet",
        "results/llm/tiny/eval/dense/perplexity.parquet",
    ):
        df = pd.read_parquet(work / table)
        assert len(df), table
        if not table.startswith("results/claims"):
            validate_table(df, table)
    perplexity = pd.read_parquet(work / "results/llm/tiny/eval/dense/perplexity.parquet")
    assert (perplexity[perplexity.metric == "perplexity"].value > 1).all()
