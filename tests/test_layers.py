"""The package's layers import only downward, late (function-level) imports included, and no two
modules import each other through any path. The layers, lowest first:

0 foundations   errors, io, paths, repro, limits, version, schema (Range, the conversion),
                sections (the data/train/eval config sections), rundir (lock, fresh/resume
                rules), runlog (metrics.jsonl, TensorBoard), outputs
1 building blocks  nn, losses, labels, grid, optim (Accelerate, backward, steps, the
                all-reduce, schedules)
2 data          data.*, datamodule, fingerprint, classifier (training a small classifier)
3 metrics       metrics.* (neither evaluate nor methods)
4 the contract  methods.base, methods.options (the translate options a method declares)
5 method files  methods.<name>: each imports the contract and lower layers, never another method
6 the registry  methods (METHODS)
7 evaluate, report
8 config (recipes), checkpoint, convert.*, train, inference
9 cli, the package (`xdomain.load`)
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

LAYERS: list[tuple[str, ...]] = [
    (
        "xdomain.errors",
        "xdomain.io",
        "xdomain.paths",
        "xdomain.repro",
        "xdomain.limits",
        "xdomain.version",
        "xdomain.schema",
        "xdomain.sections",
        "xdomain.rundir",
        "xdomain.runlog",
        "xdomain.outputs",
    ),
    ("xdomain.nn", "xdomain.losses", "xdomain.labels", "xdomain.grid", "xdomain.optim"),
    ("xdomain.data", "xdomain.datamodule", "xdomain.fingerprint", "xdomain.classifier"),
    ("xdomain.metrics",),
    ("xdomain.methods.base", "xdomain.methods.options"),
    ("xdomain.methods.*",),  # the method files
    ("xdomain.methods",),  # the registry
    ("xdomain.evaluate", "xdomain.report"),
    (
        "xdomain.config",
        "xdomain.checkpoint",
        "xdomain.convert",
        "xdomain.train",
        "xdomain.inference",
    ),
    ("xdomain.cli", "xdomain"),
]


def _modules() -> dict[str, Path]:
    out = {}
    for p in sorted((SRC / "xdomain").rglob("*.py")):
        parts = p.relative_to(SRC).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = p
    return out


MODULES = _modules()


def layer(module: str) -> int:
    """The index of the most specific LAYERS entry naming `module` (or its package)."""
    best, depth = None, -1
    for i, names in enumerate(LAYERS):
        for n in names:
            if n == "xdomain.methods.*":
                contract = ("xdomain.methods.base", "xdomain.methods.options")
                hit = module.startswith("xdomain.methods.") and module not in contract
                d = 3
            else:
                hit = module == n or module.startswith(n + ".")
                d = n.count(".") + (module == n)
            if hit and d > depth:
                best, depth = i, d
    assert best is not None, f"{module} is in no layer: add it to tests/test_layers.py"
    return best


def imports(module: str) -> set[str]:
    """Every xdomain module `module` imports, at the top or inside a function."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*up, *([node.module] if node.module else [])])
            for a in node.names:  # `from xdomain import checkpoint` imports a module
                found.add(f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base)
    return {m for m in found if m in MODULES and m != module}


def test_every_import_points_downward():
    bad = []
    for m in MODULES:
        for dep in imports(m):
            if layer(dep) > layer(m):
                bad.append(f"{m} (layer {layer(m)}) imports {dep} (layer {layer(dep)})")
            own = layer(m) == layer("xdomain.methods.cyclegan")
            if own and layer(dep) == layer(m):
                bad.append(f"method file {m} imports method file {dep}")
    assert not bad, "\n".join(bad)


def test_no_import_cycles():
    graph = {m: imports(m) for m in MODULES}
    state: dict[str, int] = {}  # 1: on the path, 2: done

    def visit(m: str, path: list[str]) -> None:
        state[m] = 1
        for dep in sorted(graph[m]):
            if state.get(dep) == 1:
                cycle = [*path[path.index(dep) :], dep] if dep in path else [m, dep]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if dep not in state:
                visit(dep, [*path, dep])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])


def test_the_layer_table_knows_every_module():
    for m in MODULES:
        layer(m)
