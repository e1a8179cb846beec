"""The package layout is its architecture: dependencies point one way, modules stay small.

Layers, bottom to top: ``core`` (FLOP accounting, hardware, the model, data, the
trainer) <- ``runs`` (store, executors, sweeps, frames, provenance) <- ``studies``
(one per paper or experiment) <- ``cli``. ``fit`` stands alone (numpy, scipy and
pandas only), ``plots`` may draw from core, runs and fit, and only the CLI (and the
chapters) import a study or the figures.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap

import pytest
from conftest import ROOT

PACKAGE = ROOT / "scalingkit"

#: Layer -> the layers it may import (besides itself and the leaves).
ALLOWED = {
    "core": set(),
    "fit": set(),
    "runs": {"core", "fit"},
    "studies": {"core", "runs", "fit"},
    "plots": {"core", "runs", "fit"},
    "cli": {"core", "runs", "fit", "studies", "plots"},
}
#: Top-level modules that import nothing of ours, usable from any layer.
LEAVES = {"scalingkit", "scalingkit.tolerances", "scalingkit.book"}
#: Modules over :data:`MAX_LINES`, each with the reason it stays whole.
LARGE = {
    # Parameter counts and per-matmul FLOP of both papers' conventions, one home each;
    # its units and Table A4 are read as ``flops.*`` by the chapters (flops.md, notation.md).
    "scalingkit.core.flops": "the one home of parameter and FLOP counts",
}
MAX_LINES = 500


def _modules() -> dict[str, ast.Module]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = (path, ast.parse(path.read_text(), filename=str(path)))
    return out


def _imports(name: str, path, tree: ast.Module) -> set[str]:
    """Every ``scalingkit`` module ``name`` imports, at any depth (functions included)."""
    found = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{a.name}" for a in node.names)
    return {m for m in found if m == "scalingkit" or m.startswith("scalingkit.")}


def _layer(module: str) -> str | None:
    """The layer of ``module``: None for the leaves and ``__main__``, ``"?"`` if none."""
    if module in LEAVES or module == "scalingkit.__main__":
        return None
    top = module.split(".")[1]
    return top if top in ALLOWED else "?"


MODULES = _modules()


def _edges() -> set[tuple[str, str]]:
    edges = set()
    for name, (path, tree) in MODULES.items():
        for target in _imports(name, path, tree):
            while target not in MODULES and "." in target:
                target = target.rpartition(".")[0]
            if target != name:
                edges.add((name, target))
    return edges


def test_every_module_belongs_to_a_layer():
    stray = [m for m in MODULES if _layer(m) == "?"]
    assert not stray, f"modules outside every layer: {stray}"


def test_dependencies_point_one_way():
    wrong = []
    for source, target in _edges():
        a, b = _layer(source), _layer(target)
        if a is None or b is None or a == b:
            continue
        if b not in ALLOWED[a]:
            wrong.append(f"{source} -> {target} ({a} may not import {b})")
    assert not wrong, "\n".join(sorted(wrong))


def test_leaves_import_nothing_of_ours():
    edges = [(s, t) for s, t in _edges() if s in LEAVES and t != "scalingkit"]
    assert not edges


def test_fit_imports_only_itself():
    outside = sorted((s, t) for s, t in _edges()
                     if s.startswith("scalingkit.fit") and not t.startswith("scalingkit.fit"))
    assert not outside


def test_fit_works_without_torch():
    code = textwrap.dedent("""
        import sys
        import importlib.abc

        class NoTorch(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name == "torch" or name.startswith("torch."):
                    raise ImportError(f"torch is blocked: {name}")
                return None

        sys.meta_path.insert(0, NoTorch())
        import numpy as np
        import scalingkit.fit
        from scalingkit.fit import ParametricFit

        rng = np.random.default_rng(0)
        n = np.repeat(np.geomspace(1e6, 1e8, 5), 5)
        d = np.tile(np.geomspace(1e8, 1e10, 5), 5)
        loss = 1.7 + 400 / n**0.34 + 410 / d**0.28
        fit = ParametricFit(n_bootstrap=0).fit(n, d, loss * np.exp(rng.normal(0, 1e-3, n.size)))
        assert "torch" not in sys.modules
        print(round(fit.alpha_, 2), round(fit.beta_, 2))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    alpha, beta = map(float, out.stdout.split())
    assert alpha == pytest.approx(0.34, abs=0.05) and beta == pytest.approx(0.28, abs=0.05)


@pytest.mark.parametrize("name", sorted(MODULES))
def test_modules_stay_readable_in_one_sitting(name):
    path, _ = MODULES[name]
    lines = len(path.read_text().splitlines())
    if name in LARGE:
        return
    assert lines <= MAX_LINES, f"{path.relative_to(ROOT)} has {lines} lines (> {MAX_LINES})"
