"""What every ``workflow/scripts/*.py`` adapter does first: logging into the job's log file, and
checking every downloaded artifact it reads against the manifest."""

from __future__ import annotations

import logging
import sys
import traceback
from contextlib import contextmanager
from pathlib import Path

from repro.data.manifest import artifact_of, check_artifact
from repro.report.provenance import collect


class JobContext:
    def __init__(self, smk):
        self.smk = smk
        self.log = logging.getLogger("repro")

    def provenance(self, device: str) -> dict[str, str]:
        repo = Path(self.smk.scriptdir).resolve().parents[1]
        return collect(code_digest=str(self.smk.params.get("code", "unknown")), device=device, repo=repo)


def check_artifact_inputs(inputs) -> list[str]:
    """Re-hash each input under ``<resources>/artifacts/<name>`` against its manifest entry (see
    :func:`repro.data.manifest.check_artifact`), so a corrupted download fails the job that reads it
    with an error naming the file; returns the artifact inputs checked."""
    checked = []
    for path in dict.fromkeys(str(p) for p in inputs):
        if artifact_of(path) is not None:
            n_files = check_artifact(path)
            logging.getLogger("repro").info("%s: %d file(s) match the manifest", path, n_files)
            checked.append(path)
    return checked


@contextmanager
def job_context(smk):
    """Send logging, warnings and progress bars (stderr) to the job's log; check the artifacts the job
    reads against the manifest; log any failure in full."""
    log_path = Path(smk.log[0]) if len(smk.log) else None
    stream = open(log_path, "w", buffering=1) if log_path else sys.stderr
    saved_stderr = sys.stderr
    sys.stderr = stream
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    logging.captureWarnings(True)
    try:
        check_artifact_inputs(getattr(smk, "input", ()))
        yield JobContext(smk)
    except BaseException:
        stream.write(traceback.format_exc())
        raise
    finally:
        root.removeHandler(handler)
        sys.stderr = saved_stderr
        if log_path:
            stream.close()
