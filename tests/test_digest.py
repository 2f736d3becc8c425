"""Source digests: a module's digest covers exactly the repro modules it imports."""

import shutil

from repro.workflow.digest import PACKAGE_ROOT, module_closure, module_digest


def _names(paths, root):
    return {str(p.relative_to(root)) for p in paths}


def test_closure_follows_imports_transitively():
    files = _names(module_closure("repro.optim.saddle_experiment"), PACKAGE_ROOT)
    assert {
        "__init__.py",
        "optim/__init__.py",
        "optim/saddle_experiment.py",
        "optim/saddle_problems.py",
        "optim/stochastic_momentum.py",
        "optim/momentum_diagnostics.py",
        "report/rows.py",
        "report/provenance.py",
    } <= files
    assert "optim/heavy_ball.py" not in files


def test_editing_a_module_changes_only_its_dependants(tmp_path):
    root = tmp_path / "repro"
    shutil.copytree(PACKAGE_ROOT, root, ignore=shutil.ignore_patterns("__pycache__"))
    saddle = module_digest("repro.optim.saddle_experiment", root=root)
    hb = module_digest("repro.optim.heavy_ball_experiment", root=root)
    module_digest.cache_clear()
    with (root / "optim" / "heavy_ball.py").open("a") as fh:
        fh.write("\n# an edit\n")
    assert module_digest("repro.optim.saddle_experiment", root=root) == saddle
    assert module_digest("repro.optim.heavy_ball_experiment", root=root) != hb
    module_digest.cache_clear()


def test_relative_imports_are_followed(tmp_path):
    pkg = tmp_path / "repro"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("from . import leaf\n")
    (pkg / "sub" / "leaf.py").write_text("from ..other import thing\n")
    (pkg / "other.py").write_text("thing = 1\n")
    files = _names(module_closure("repro.sub", root=pkg), pkg)
    assert files == {"__init__.py", "sub/__init__.py", "sub/leaf.py", "other.py"}
