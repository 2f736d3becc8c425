"""Files and folders: staged folders swapped in atomically, tree hashes, hard links."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from repro.data.manifest import sha256_file


@contextmanager
def staged_dir(final: Path) -> Iterator[Path]:
    """Yield an empty hidden folder beside ``final``; on success swap it in as ``final``, else delete it."""
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
    os.chmod(tmp, 0o755)
    try:
        yield tmp
        _replace_dir(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _replace_dir(new: Path, final: Path) -> None:
    """Put folder ``new`` at ``final``, moving any old ``final`` aside first and deleting it after."""
    if final.is_symlink() or final.is_file():
        final.unlink()
    if not final.exists():
        os.replace(new, final)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{final.name}.old-", dir=final.parent))
    os.replace(final, old)  # POSIX rename may replace an empty folder
    os.replace(new, final)
    shutil.rmtree(old, ignore_errors=True)


def hash_tree(root: Path) -> dict[str, str]:
    """sha256 of every file and symbolic link under ``root``, by POSIX path relative to ``root``."""
    hashes = {}
    for dirpath, dirnames, filenames in os.walk(root):
        links = [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]
        for entry in filenames + links:
            path = Path(dirpath, entry)
            hashes[path.relative_to(root).as_posix()] = sha256_file(path)
    return dict(sorted(hashes.items()))


def _tree_bytes(root: Path, rels: Iterable[str]) -> int:
    return sum((root / rel).lstat().st_size for rel in rels)


def link_or_copy(src: Path, dst: Path) -> None:
    """Hard-link ``src`` (symlinks resolved) to ``dst``, copying where a link is impossible."""
    src = Path(os.path.realpath(src))
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)
