"""The package's layering, read from its import statements (no import is executed).

Data flows one way: user API (fastgen.sklearn, fastgen.torch, fastgen.cli) -> fastgen.models ->
fastgen.ops -> fastgen._native -> the compiled kernels. These tests parse every module under
fastgen/ and fail on an upward or layer-skipping import, on an import cycle, and on a module
reaching into another package's private names. ``layering_violations`` is a plain function of
source texts so that the tests below can also show that each rule fires.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE_ROOT = Path(__file__).resolve().parents[1] / "fastgen"

# importer prefix -> module prefixes it must not import, and why
FORBIDDEN = [
    ("fastgen.models", "fastgen.sklearn", "models hold the math; estimators are built on them"),
    ("fastgen.models", "fastgen.torch", "models are framework-agnostic"),
    ("fastgen.models", "fastgen.cli", "models never call the user interface"),
    ("fastgen.models", "fastgen._native", "models reach kernels through fastgen.ops"),
    ("fastgen.ops", "fastgen.models", "ops sit below models"),
    ("fastgen.ops", "fastgen.sklearn", "ops sit below the user API"),
    ("fastgen.ops", "fastgen.torch", "ops are framework-agnostic (fastgen._backend handles tensors)"),
    ("fastgen.ops", "fastgen.cli", "ops sit below the user API"),
    ("fastgen.sklearn", "fastgen.cli", "estimators never call the command line"),
    ("fastgen.sklearn", "fastgen._native", "estimators reach kernels through models and ops"),
    ("fastgen.torch", "fastgen.cli", "torch modules never call the command line"),
    ("fastgen.torch", "fastgen._native", "torch ops reach kernels through fastgen.ops"),
    ("fastgen._native", "fastgen.ops", "backends trust their input and never call back up"),
    ("fastgen._native", "fastgen.models", "backends never call back up"),
]

# The only modules outside fastgen.ops that may load a backend, and why.
NATIVE_IMPORTERS = {
    "fastgen.ops": "the ops validate, then call a kernel",
    "fastgen._native": "the backends themselves",
    "fastgen.random": "the stream's own fill kernels (random sits below ops, which use it)",
    "fastgen._backend": "placement asks the CUDA backend whether a device is usable",
    "fastgen.numba": "numba code calls the compiled formulas' C entry points, whose addresses _C hands out",
}


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def is_package(path: Path) -> bool:
    return path.name == "__init__.py"


def resolve(importer: str, importer_is_package: bool, level: int, module: str | None) -> str:
    if level == 0:
        return module or ""
    base = importer.split(".")
    if not importer_is_package:
        base = base[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join(base + ([module] if module else []))


def collect_imports(name: str, package: bool, source: str, known_modules: set[str]):
    """Yield (imported module, private attribute or None, line) for every import in a module,
    at module level or inside functions, plus ``alias._name`` attribute uses of imported modules."""
    tree = ast.parse(source)
    aliases: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, None, node.lineno
                if alias.asname:
                    aliases[alias.asname] = alias.name
        elif isinstance(node, ast.ImportFrom):
            base = resolve(name, package, node.level, node.module)
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                if candidate in known_modules:
                    yield candidate, None, node.lineno
                    aliases[alias.asname or alias.name] = candidate
                else:
                    yield base, alias.name, node.lineno
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases
                and node.attr.startswith("_") and not node.attr.startswith("__")):
            yield aliases[node.value.id], node.attr, node.lineno


def private_owners(target: str) -> list[str]:
    """For each private part of ``target``, the module or package it is private to (its parent)."""
    parts = target.split(".")
    return [".".join(parts[:i]) for i, part in enumerate(parts) if part.startswith("_") and not part.startswith("__")]


def within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def layering_violations(sources: dict[str, tuple[bool, str]]) -> list[str]:
    """``sources`` maps a module name to (is a package, its source); returns one line per problem."""
    known = set(sources)
    problems = []
    edges: dict[str, set[str]] = {name: set() for name in sources}
    for name, (package, source) in sources.items():
        own_package = name if package else name.rpartition(".")[0]
        for target, attribute, line in collect_imports(name, package, source, known):
            if not within(target, "fastgen"):
                continue
            for importer_prefix, forbidden, why in FORBIDDEN:
                if within(name, importer_prefix) and within(target, forbidden):
                    problems.append(f"{name}:{line} imports {target} ({why})")
            if within(target, "fastgen._native") and not any(within(name, p) for p in NATIVE_IMPORTERS):
                problems.append(f"{name}:{line} imports {target} (only fastgen.ops loads a backend)")
            full = f"{target}.{attribute}" if attribute else target
            for owner in private_owners(full):
                if not within(name if attribute and owner == target else own_package, owner):
                    problems.append(f"{name}:{line} uses {full}, private to {owner}")
            if target in known and target != name and not within(name, target):
                edges[name].add(target)  # an import of one's own parent package is not a cycle
    problems.extend(f"import cycle among {', '.join(cycle)}" for cycle in import_cycles(edges))
    return problems


def import_cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(edges.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return components


def package_sources() -> dict[str, tuple[bool, str]]:
    return {module_name(path, PACKAGE_ROOT): (is_package(path), path.read_text(encoding="utf-8"))
            for path in sorted(PACKAGE_ROOT.rglob("*.py"))}


def test_the_package_respects_its_layering():
    problems = layering_violations(package_sources())
    assert not problems, "layering violations:\n" + "\n".join(problems)


def tiny_package(**modules: str) -> dict[str, tuple[bool, str]]:
    base = {"fastgen": (True, ""), "fastgen.ops": (True, ""), "fastgen.models": (True, ""),
            "fastgen._native": (True, ""), "fastgen._native.cpu": (False, "C = None\n_STREAM = None\n"),
            "fastgen.ops.gibbs": (False, "from .._native import cpu\n"),
            "fastgen.ops._validate": (False, "def check(x):\n    return x\n"),
            "fastgen.models.rbm": (False, "from ..ops import gibbs\n"),
            "fastgen.sklearn": (True, "from .models import rbm\n"),
            "fastgen.torch": (True, ""), "fastgen.torch.training": (False, ""),
            "fastgen.torch.autoencoders": (False, "")}
    for name, source in modules.items():
        dotted = name.replace("__", ".")
        base[dotted] = (base.get(dotted, (False, ""))[0], source)
    return base


def test_the_rules_accept_the_intended_layering():
    assert layering_violations(tiny_package()) == []


@pytest.mark.parametrize("module, source, expected", [
    ("fastgen__models__rbm", "from ..sklearn import BernoulliRBM\n", "models hold the math"),
    ("fastgen__models__rbm", "from .. import _native\n", "models reach kernels through fastgen.ops"),
    ("fastgen__models__rbm", "from .._native import cpu\ncpu.C.rbm_train_batches()\n",
     "models reach kernels through fastgen.ops"),
    ("fastgen__ops__gibbs", "def f():\n    from ..models import rbm\n", "ops sit below models"),
    ("fastgen__sklearn", "from .._native.cpu import C\n", "estimators reach kernels"),
    ("fastgen__torch__training", "import fastgen._native.cuda\n", "torch ops reach kernels"),
    ("fastgen__ops__gibbs", "from .._native import cpu\nx = cpu._STREAM\n", "private to fastgen._native"),
    ("fastgen__torch__training", "from ..ops._validate import check\n", "private to fastgen.ops"),
    ("fastgen__torch__training", "from .autoencoders import x\n", "import cycle"),
])
def test_each_rule_fires(module, source, expected):
    sources = tiny_package(**{module: source})
    if expected == "import cycle":
        sources["fastgen.torch.autoencoders"] = (False, "def f():\n    from .training import y\n")
    problems = layering_violations(sources)
    assert any(expected in p for p in problems), problems
