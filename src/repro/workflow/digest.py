"""Digests of the ``repro`` sources a job depends on.

Snakemake's code trigger sees a rule's script but not the package it imports.  Each
rule therefore takes ``module_digest(<entry module>)`` as a param: a sha256 over the
entry module and every ``repro`` module it imports, transitively (found by reading the
import statements, without importing anything).  Editing a module reruns exactly the
jobs whose code reaches it.
"""

from __future__ import annotations

import ast
import hashlib
from functools import lru_cache
from pathlib import Path

PACKAGE = "repro"
PACKAGE_ROOT = Path(__file__).resolve().parents[1]


def _module_file(name: str, root: Path) -> Path | None:
    parts = name.split(".")[1:]
    if not parts:
        return root / "__init__.py"
    rel = Path(*parts)
    for candidate in (root / rel.with_suffix(".py"), root / rel / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _parents(name: str):
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


# (module name, is a package, sha256 of the source) -> the repro modules it imports.  Keyed by
# content, so an edited file is parsed again and an unchanged one never twice in one process:
# Snakemake evaluates dozens of digests whose closures share most modules, and parsing dominated
# the time of a dry run (`scripts/bench_noop_dryrun.py`).
_IMPORTS_CACHE: dict[tuple[str, bool, bytes], frozenset[str]] = {}


def _imports(path: Path, name: str) -> set[str]:
    source = path.read_bytes()
    is_pkg = path.name == "__init__.py"
    key = (name, is_pkg, hashlib.sha256(source).digest())
    found = _IMPORTS_CACHE.get(key)
    if found is None:
        found = _IMPORTS_CACHE[key] = frozenset(_parse_imports(source, path, name, is_pkg))
    return set(found)


_STATEMENT_HOLDERS = (ast.stmt, ast.ExceptHandler, ast.match_case)


def _statements(tree: ast.Module):
    """Every statement of ``tree``, however nested (in functions, classes, if/try/with/match bodies).

    Import statements can only be statements, never parts of expressions, so this finds every
    import ``ast.walk`` finds while skipping the expressions, most of a module's nodes.
    """
    todo = list(tree.body)
    while todo:
        node = todo.pop()
        yield node
        todo.extend(child for child in ast.iter_child_nodes(node) if isinstance(child, _STATEMENT_HOLDERS))


def _parse_imports(source: bytes, path: Path, name: str, is_pkg: bool) -> set[str]:
    tree = ast.parse(source, filename=str(path))
    found = set()
    for node in _statements(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = name.split(".") if is_pkg else name.split(".")[:-1]
                base_parts = base_parts[: len(base_parts) - (node.level - 1)]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            found.add(base)
            found.update(f"{base}.{a.name}" for a in node.names)
    return {m for m in found if m == PACKAGE or m.startswith(PACKAGE + ".")}


def module_closure(entry: str, root: Path = PACKAGE_ROOT) -> list[Path]:
    """Files of ``entry`` and every repro module it reaches, parent packages included."""
    seen: dict[str, Path] = {}
    todo = [entry]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        path = _module_file(name, root)
        if path is None:
            if name == entry:
                raise ValueError(f"module {entry!r} not found under {root}")
            continue  # a name imported from a module, not a module itself
        seen[name] = path
        todo.extend(_parents(name))
        todo.extend(_imports(path, name))
    return sorted(set(seen.values()))


@lru_cache(maxsize=None)
def module_digest(*entries: str, root: Path = PACKAGE_ROOT) -> str:
    """sha256 over the sources reachable from ``entries`` (paths relative to the package)."""
    h = hashlib.sha256()
    files = sorted({p for e in entries for p in module_closure(e, root)})
    for path in files:
        h.update(str(path.relative_to(root)).encode())
        h.update(b"\0")
        h.update(path.read_bytes())
        h.update(b"\0")
    return h.hexdigest()[:16]
