"""Faults: a run killed mid-job, concurrent writers of one shared folder, a corrupted artifact.

* A SIGKILL to the whole Snakemake process group leaves no output that looks complete: each output
  of the killed job is absent, or Snakemake has it marked incomplete and refuses to use it; a rerun
  with ``--rerun-incomplete`` (the default profile sets it) gives the tables of an uninterrupted run.
* Writers of one folder in different processes (``repro.io.atomic_dir``, an artifact fetched into
  ``resources/``) take turns under ``repro.io.locked``: the folder ends up complete and intact.
* A corrupted artifact fails ``python -m repro.data.verify`` (``make verify``) and the job that reads
  it, each with a non-zero exit and an error naming the file.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import os
import signal
import struct
import subprocess
import sys
import textwrap
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import (
    ROOT,
    SNAKEMAKE,
    assert_tables_equal,
    clone_run,
    copy_workflow,
    dag_jobs,
    run_snakemake,
)

CONFIG = "config/test.yaml"


# --------------------------------------------------------------------------- (a) SIGKILL mid-job


def _start_snakemake(work: Path, *args: str) -> subprocess.Popen:
    """Snakemake in its own process group (jobs run as its children, in the same group)."""
    cmd = [SNAKEMAKE, "--snakefile", str(work / "Snakefile"), "--directory", str(work), "--workflow-profile", "none"]
    log = open(work / "killed_run.log", "w")
    return subprocess.Popen([*cmd, *args], cwd=work, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def _wait_for(path: Path, proc: subprocess.Popen, timeout: float = 900) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            raise AssertionError(f"snakemake exited ({proc.returncode}) before {path} appeared")
        if time.monotonic() > deadline:
            os.killpg(proc.pid, signal.SIGKILL)
            raise AssertionError(f"{path} did not appear within {timeout} s")
        time.sleep(0.01)


def _kill_group(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 30
    while _group_alive(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _group_alive(proc.pid), "a job of the killed run outlived the SIGKILL"


def _group_alive(pgid: int) -> bool:
    """Whether any live (not zombie) process is still in process group ``pgid``."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


def _incomplete_markers(work: Path) -> set[str]:
    """Output paths that Snakemake's file persistence marks incomplete (``.snakemake/incomplete/``)."""
    found = set()
    for marker in (work / ".snakemake" / "incomplete").iterdir():
        if marker.name == "migration_underway":
            continue
        try:
            found.add(base64.urlsafe_b64decode(marker.name).decode())
        except (ValueError, UnicodeDecodeError):
            continue
    return found


def _check_no_complete_looking_output(work: Path, outputs: list[str]) -> list[str]:
    """Every output of the killed job is absent or marked incomplete (and Snakemake refuses it without
    ``--rerun-incomplete``); return the outputs that exist."""
    existing = [o for o in outputs if (work / o).exists()]
    if existing:
        assert set(existing) <= _incomplete_markers(work), (existing, _incomplete_markers(work))
        run_snakemake(work, "--unlock", "--configfile", CONFIG)
        refused = run_snakemake(work, "-n", *existing, "--configfile", CONFIG, check=False)
        assert refused.returncode != 0
        text = refused.stdout + refused.stderr
        assert "IncompleteFilesException" in text and all(o in text for o in existing), text
    return existing


def _hidden_leftovers(work: Path, outputs: list[str]) -> list[str]:
    """Temporary files or folders an interrupted atomic write left beside the outputs (hidden names)."""
    left = set()
    for output in outputs:
        folder = (work / output).parent
        if folder.is_dir():
            left.update(
                str(p.relative_to(work)) for p in folder.glob(f".{Path(output).name}.*") if "lock" not in p.name
            )
    return sorted(left)


@pytest.mark.workflow
def test_sigkill_mid_job_then_rerun_incomplete_gives_the_uninterrupted_tables(finished_test_run, tmp_path):
    """The stochastic-momentum tables built from scratch, killed while its longest job (the toy-saddle
    simulation) runs: that job's outputs are absent or flagged incomplete; the rerun with
    ``--rerun-incomplete`` reproduces the tables of the uninterrupted session run."""
    work = clone_run(finished_test_run, tmp_path / "run")
    targets = ["results/tables/stochastic_momentum.parquet", "results/claims/stochastic_momentum.parquet"]
    jobs = dag_jobs(work, *targets)
    assert {job["rule"] for job in jobs.values()} == {"simulate_saddle", "aggregate_paper", "compute_claims"}
    for job in jobs.values():  # as before a first run: none of the targets' jobs has run
        for output in job["output"]:
            (work / output).unlink()
    job = jobs["simulate_saddle[problem=toy_saddle]"]
    log = work / "logs/simulate_saddle/toy_saddle.log"
    log.unlink()
    proc = _start_snakemake(work, *targets, "--cores", "2", "--configfile", CONFIG)
    _wait_for(log, proc)
    _kill_group(proc)
    assert not (work / targets[0]).exists()

    existing = _check_no_complete_looking_output(work, job["output"])
    print(f"outputs present after the kill (flagged incomplete): {existing}")
    print(f"hidden temporary leftovers: {_hidden_leftovers(work, job['output'])}")

    run_snakemake(work, "--unlock", "--configfile", CONFIG)
    rerun = run_snakemake(work, *targets, "--cores", "2", "--configfile", CONFIG, "--rerun-incomplete")
    assert "simulate_saddle" in rerun.stdout + rerun.stderr
    for table in (*targets, *job["output"]):
        assert_tables_equal(finished_test_run / table, work / table)
    assert not _incomplete_markers(work)
    assert "Nothing to be done" in run_snakemake(work, "-n", *targets, "--configfile", CONFIG).stdout


@pytest.mark.workflow
def test_sigkill_between_two_outputs_leaves_the_first_flagged_incomplete(finished_test_run, tmp_path):
    """prepare_tiny_llm writes its texts (atomically) before it trains the model for seconds: killed
    in between, the finished-looking text is flagged incomplete, the model folder never appears, and
    ``--rerun-incomplete`` rebuilds every output byte for byte."""
    work = clone_run(finished_test_run, tmp_path / "run")
    job = dag_jobs(work, "resources/tiny/text/train.txt")["prepare_tiny_llm[]"]
    train = work / "resources/tiny/text/train.txt"
    train.unlink()
    proc = _start_snakemake(work, "resources/tiny/text/train.txt", "--cores", "2", "--configfile", CONFIG)
    _wait_for(train, proc)
    _kill_group(proc)

    existing = _check_no_complete_looking_output(work, job["output"])
    assert "resources/tiny/text/train.txt" in existing
    assert not (work / "resources/tiny/model").exists()  # a folder swapped in whole, or not at all
    print(f"hidden temporary leftovers: {_hidden_leftovers(work, job['output'])}")

    run_snakemake(work, "--unlock", "--configfile", CONFIG)
    run_snakemake(work, "resources/tiny/text/train.txt", "--cores", "2", "--configfile", CONFIG, "--rerun-incomplete")
    for output in job["output"]:
        assert _tree_bytes(work, output) == _tree_bytes(finished_test_run, output), output
    assert not _incomplete_markers(work)


def _tree_bytes(run: Path, output: str) -> dict[str, str]:
    """sha256 of an output file, or of every file under an output folder (by relative path).

    The lm-eval task YAML names its item set by absolute path (``repro.data.zeroshot.lmeval_task_config``),
    so the run's own folder is replaced by a placeholder before hashing.
    """
    path = run / output
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    return {
        str(p.relative_to(path)) if path.is_dir() else p.name: hashlib.sha256(
            p.read_bytes().replace(str(run.resolve()).encode(), b"<run>")
        ).hexdigest()
        for p in files
    }


# --------------------------------------------------------------------------- (b) concurrent writers


def _run_together(tmp_path: Path, code: str, n_procs: int = 2, timeout: float = 900) -> list[str]:
    """Run ``code`` in ``n_procs`` Python processes released at the same moment (argv[1] = the
    process index, argv[2] = a shared folder); return their outputs, asserting every one exited 0."""
    script = tmp_path / "worker.py"
    script.write_text(
        "import sys, time\nfrom pathlib import Path\n"
        "shared = Path(sys.argv[2]); (shared / f'ready{sys.argv[1]}').touch()\n"
        "while not (shared / 'go').exists():\n    time.sleep(0.01)\n" + textwrap.dedent(code)
    )
    shared = tmp_path / "shared"
    shared.mkdir(exist_ok=True)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")]))}
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), str(i), str(shared)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
        )
        for i in range(n_procs)
    ]
    deadline = time.monotonic() + timeout
    while not all((shared / f"ready{i}").exists() for i in range(n_procs)):
        assert time.monotonic() < deadline and all(p.poll() is None for p in procs), "a worker did not start"
        time.sleep(0.01)
    (shared / "go").touch()
    outputs = [p.communicate(timeout=timeout)[0].decode() for p in procs]
    for p, out in zip(procs, outputs):
        assert p.returncode == 0, out
    return outputs


def test_locked_lets_one_process_at_a_time_in(tmp_path):
    journal = tmp_path / "journal.txt"
    _run_together(
        tmp_path,
        f"""
        from repro.io import locked
        for i in range(40):
            with locked({str(journal)!r}):
                with open({str(journal)!r}, "a") as f:
                    f.write(f"enter {{sys.argv[1]}}\\n"); f.flush()
                    time.sleep(0.005)
                    f.write(f"leave {{sys.argv[1]}}\\n")
        """,
    )
    lines = journal.read_text().split("\n")[:-1]
    assert len(lines) == 2 * 2 * 40
    for enter, leave in zip(lines[::2], lines[1::2]):  # never two writers inside at once
        assert enter.startswith("enter ") and leave == "leave " + enter.split()[1]
    assert (tmp_path / ".journal.txt.lock").exists()


def test_locked_times_out_naming_the_lock(tmp_path):
    from repro.io import locked

    target = tmp_path / "cache"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"from repro.io import locked\nimport time\nwith locked({str(target)!r}):\n"
            "    print('held', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
    )
    try:
        assert holder.stdout.readline().strip() == b"held"
        with pytest.raises(TimeoutError, match=r"\.cache\.lock"):
            with locked(target, timeout=0.2):
                pass
    finally:
        holder.kill()
        holder.wait()
    with locked(target, timeout=5):  # a killed holder leaves no stale lock
        pass


def test_concurrent_atomic_dir_writers_leave_one_complete_folder(tmp_path):
    target = tmp_path / "cache" / "assets"
    _run_together(
        tmp_path,
        f"""
        from repro.io import atomic_dir
        for i in range(25):
            token = f"{{sys.argv[1]}}-{{i}}"
            with atomic_dir({str(target)!r}) as tmp:
                for name in ("a.bin", "b.bin", "c.bin"):
                    (tmp / name).write_bytes(token.encode() * 20000)
        """,
    )
    files = sorted(p.name for p in target.iterdir())
    assert files == ["a.bin", "b.bin", "c.bin"]
    contents = {(target / name).read_bytes() for name in files}
    assert len(contents) == 1  # all three from the same write
    assert sorted(p.name for p in target.parent.iterdir()) == [".assets.lock", "assets"]  # no temporary left


def test_concurrent_fetches_of_one_artifact_leave_it_intact(tmp_path):
    """Two processes fetching the same artifact into one resources/ (two runs sharing it) both succeed
    and leave a folder that matches its manifest."""
    resources = tmp_path / "resources"
    (resources / "drop-in").mkdir(parents=True)
    bundle = _zip({f"corpus/f{i}.txt": (f"line {i}\n" * 200).encode() for i in range(100)})
    (resources / "drop-in" / "bundle.zip").write_bytes(bundle)
    spec = {
        "kind": "url",
        "url": "http://127.0.0.1:9/bundle.zip",
        "sha256": hashlib.sha256(bundle).hexdigest(),
        "licence": "CC0",
        "members": ["*.txt"],
    }
    _run_together(
        tmp_path,
        f"""
        from repro.data.sources import fetch
        for i in range(8):
            fetch("bundle", {spec!r}, {str(resources)!r})
        """,
    )
    from repro.data.manifest import read_manifest, verify

    assert verify(resources) == []
    assert len(read_manifest(resources)["bundle"]["files"]) == 100
    assert sorted(p.name for p in (resources / "artifacts").iterdir()) == ["bundle"]
    assert sorted(p.name for p in (resources / "manifest").iterdir()) == ["bundle.json"]
    assert (resources / ".locks" / "bundle.lock").is_file()


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in sorted(members.items()):
            zf.writestr(name, data)
    return buf.getvalue()


# --------------------------------------------------------------------------- (c) a corrupted artifact


def _idx(array: np.ndarray, code: int) -> bytes:
    return gzip.compress(
        bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes(), mtime=0
    )


def _fashion_mnist_zip() -> bytes:
    """A Fashion-MNIST-shaped archive: 6 training and 4 test images of 28x28, with labels."""
    rng = np.random.default_rng(0)
    members = {}
    for prefix, n in (("train", 6), ("t10k", 4)):
        members[f"fm/{prefix}-images-idx3-ubyte.gz"] = _idx(rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), 0x08)
        members[f"fm/{prefix}-labels-idx1-ubyte.gz"] = _idx(np.arange(n, dtype=np.uint8) % 10, 0x08)
    return _zip(members)


@pytest.fixture
def artifact_run(tmp_path) -> Path:
    """The test tier plus one artifact (a drop-in archive, no network) and the rule that reads it,
    both run."""
    (tmp_path / "run").mkdir()
    work = copy_workflow(tmp_path / "run")
    archive = _fashion_mnist_zip()
    (work / "resources" / "drop-in").mkdir(parents=True)
    (work / "resources" / "drop-in" / "fm.zip").write_bytes(archive)
    config = yaml.safe_load((work / CONFIG).read_text())
    config["artifacts"] = {
        "fashion_mnist": {
            "kind": "url",
            "url": "http://127.0.0.1:9/fm.zip",
            "sha256": hashlib.sha256(archive).hexdigest(),
            "licence": "test data",
            "members": ["fm/*.gz"],
        }
    }
    config["prepare"] = [*config["prepare"], "fashion_mnist"]
    (work / "config" / "faults.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    run_snakemake(work, "resources/images/fashion_mnist.npz", "--cores", "1", "--configfile", "config/faults.yaml")
    with np.load(work / "resources/images/fashion_mnist.npz") as npz:
        assert npz["x_train"].shape == (6, 28, 28) and npz["x_test"].shape == (4, 28, 28)
    return work


def _verify_cli(work: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "repro.data.verify", "--resources", "resources"],
        cwd=work,
        capture_output=True,
        text=True,
    )


@pytest.mark.workflow
def test_a_corrupted_artifact_fails_verify_and_the_rule_that_reads_it(artifact_run):
    work = artifact_run
    assert _verify_cli(work).returncode == 0
    member = "artifacts/fashion_mnist/fm/train-labels-idx1-ubyte.gz"
    path = work / "resources" / member
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))

    verify = _verify_cli(work)
    assert verify.returncode == 1
    assert f"FAIL fashion_mnist: {member}: sha256 mismatch" in verify.stdout
    assert "1 of 1 artifact(s) failed verification: fashion_mnist" in verify.stderr

    output = "resources/images/fashion_mnist.npz"
    failed = run_snakemake(
        work,
        output, "--cores", "1", "--configfile", "config/faults.yaml", "--show-failed-logs",
        "--forcerun", "prepare_fashion_mnist",
        check=False,
    )  # fmt: skip
    assert failed.returncode != 0
    text = failed.stdout + failed.stderr
    assert "ArtifactCheckError" in text and "does not match its manifest" in text, text
    assert f"fashion_mnist: {member}: sha256 mismatch" in text
    log = (work / "logs/prepare_fashion_mnist/fashion_mnist.log").read_text()
    assert f"fashion_mnist: {member}: sha256 mismatch" in log
    assert not (work / output).exists()  # the failed job's output is gone, not left stale


def test_check_artifact_names_each_bad_file(tmp_path):
    """The check a job runs on the artifacts it reads (repro.workflow.script.job_context)."""
    from repro.data.manifest import ArtifactCheckError, check_artifact
    from repro.data.sources import fetch
    from repro.workflow.script import check_artifact_inputs

    resources = tmp_path / "resources"
    (resources / "drop-in").mkdir(parents=True)
    members = {"d/a.txt": b"alpha\n", "d/b.txt": b"beta\n"}
    archive = _zip(members)
    (resources / "drop-in" / "x.zip").write_bytes(archive)
    spec = {"kind": "url", "url": "http://127.0.0.1:9/x.zip", "sha256": hashlib.sha256(archive).hexdigest()}
    fetch("things", {**spec, "licence": "CC0", "members": ["d/*"]}, resources)
    folder = resources / "artifacts" / "things"
    assert check_artifact(folder) == 2
    assert check_artifact(folder / "d" / "a.txt") == 1
    assert check_artifact_inputs([str(folder), "resources/other/file.txt"]) == [str(folder)]

    (folder / "d" / "b.txt").write_bytes(b"BETA\n")
    (folder / "d" / "a.txt").unlink()
    with pytest.raises(ArtifactCheckError) as err:
        check_artifact(folder)
    message = str(err.value)
    assert f"artifact 'things' read from {folder} does not match its manifest" in message
    assert "things: artifacts/things/d/a.txt: missing" in message
    expected, actual = hashlib.sha256(b"beta\n").hexdigest(), hashlib.sha256(b"BETA\n").hexdigest()
    assert f"things: artifacts/things/d/b.txt: sha256 mismatch: expected {expected}, got {actual}" in message
    assert check_artifact(folder / "d" / "c.txt") == 0  # not in the manifest: nothing of it to check

    (resources / "manifest" / "things.json").unlink()
    with pytest.raises(ArtifactCheckError, match="has no manifest entry"):
        check_artifact(folder)
    with pytest.raises(ValueError, match="not inside"):
        check_artifact(tmp_path / "elsewhere")
