"""Re-verify fetched artifacts against the manifest: ``python -m repro.data.verify [--resources DIR] [names...]``.

Prints one line per artifact (``OK`` or each problem, naming the artifact, the file and both
hashes).  Exit status: 0 all good, 1 some problem, 2 the manifest is missing or empty.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from repro.data.manifest import MANIFEST_DIR, read_manifest, verify_entry


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m repro.data.verify", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--resources", type=Path, default=Path("resources"), help="resources folder (default: resources)"
    )
    parser.add_argument("names", nargs="*", help="artifacts to check (default: every artifact in the manifest)")
    return parser


def _report(resources: Path, name: str, manifest: dict[str, dict]) -> list[str]:
    """Print the line(s) for one artifact and return its problems."""
    if name not in manifest:
        problems = [f"{name}: not in the manifest under {resources / MANIFEST_DIR}"]
    else:
        problems = verify_entry(resources, manifest[name])
    if problems:
        for problem in problems:
            print(f"FAIL {problem}")
    else:
        entry = manifest[name]
        n_files = len(entry.get("files", {})) + (1 if entry.get("download") else 0)
        print(f"OK   {name}: {n_files} file(s) match the manifest")
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    manifest = read_manifest(args.resources)
    if not manifest:
        print(f"no manifest entries under {args.resources / MANIFEST_DIR}", file=sys.stderr)
        return 2
    names = args.names or sorted(manifest)
    failed = [name for name in names if _report(args.resources, name, manifest)]
    if failed:
        print(f"{len(failed)} of {len(names)} artifact(s) failed verification: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
