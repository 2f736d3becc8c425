"""Atomic file writes: a reader never sees a half-written output under its final name.

``locked`` serialises writers of one shared path across processes (an ``fcntl.flock`` on a hidden
lock file beside it), for the places where two jobs or two runs may write the same folder: a
folder swapped in by :func:`atomic_dir`, an artifact fetched into ``resources/``.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import pandas as pd


def lock_path(path) -> Path:
    """The lock file that guards ``path``: ``path`` itself if its name ends in ``.lock``, else
    ``.<name>.lock`` in the same folder."""
    path = Path(path)
    return path if path.name.endswith(".lock") else path.with_name(f".{path.name}.lock")


@contextmanager
def locked(path, timeout: float | None = None, poll: float = 0.05):
    """Hold an exclusive lock on ``path`` (see :func:`lock_path`) for the block, across processes.

    An ``fcntl.flock`` on the lock file: released when the block ends or the process dies (even by
    SIGKILL), so a crash never leaves a stale lock behind; the file itself stays. With ``timeout``
    (seconds), raise ``TimeoutError`` naming the lock file instead of waiting longer.
    """
    lock = lock_path(path)
    lock.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        if timeout is None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        else:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise TimeoutError(
                            f"could not lock {lock} within {timeout} s (held by another process)"
                        ) from None
                    time.sleep(poll)
        yield lock
    finally:
        os.close(fd)  # closing the descriptor releases the lock


@contextmanager
def atomic_path(path, suffix: str | None = None):
    """Yield a temporary path beside ``path``; rename it into place only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix or path.suffix, dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


@contextmanager
def atomic_dir(path):
    """Yield an empty temporary folder beside ``path``; it replaces ``path`` only if the block succeeds.

    The swap (removing an old ``path``, renaming the new folder) holds :func:`locked` on ``path``, so
    concurrent writers of one folder each leave a complete folder behind, never a mix or an error.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
    try:
        yield tmp
        with locked(path):
            if path.exists():
                shutil.rmtree(path)
            os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def write_parquet(df: pd.DataFrame, path) -> None:
    with atomic_path(path) as tmp:
        df.to_parquet(tmp, index=False)


def write_text(text: str, path) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(obj, path) -> None:
    write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n", path)
