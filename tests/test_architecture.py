"""Import contracts between hedger's packages (see docs/architecture.md).

Every module under ``hedger/`` is read with ``ast``, so an import inside a function or under
``if TYPE_CHECKING:`` counts like one at the top of the file: a lazy import still couples two
packages, and a type-only import is one edit away from a runtime one. Relative imports are
resolved, and ``from package import name`` counts as importing ``package.name`` when that is a
module of the tree. A broken contract names every direct import that breaks it, as
``module -> imported module``. The indirect check follows what importing a module really runs
(its imports and its parents' ``__init__``, as import-linter does) and names the shortest
chain to each forbidden import made by a module outside the contract.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections import deque
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE_DIR = ROOT / "hedger"

CORE = "hedger.core"
MARKET = "hedger.market"
EXECUTION = "hedger.execution"
OFFLINE = ("hedger.sim", "hedger.paper", "hedger.backtest")
# What drives a real account: the hedger.live package (every module in it) and the HTTP
# control surface.
LIVE_DAEMON = ("hedger.live", "hedger.obs.http")
# The shell's third-party libraries: importing the core must load none of them.
SHELL_LIBRARIES = ("pydantic", "yaml", "ccxt", "aiohttp", "structlog")


def within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def within_any(module: str, packages: Collection[str]) -> bool:
    return any(within(module, package) for package in packages)


@dataclass(frozen=True, slots=True)
class Edge:
    importer: str
    imported: str
    line: int

    def __str__(self) -> str:
        return f"{self.importer} -> {self.imported}"


@dataclass(frozen=True, slots=True)
class Contract:
    """Modules in ``importers`` import nothing in ``forbidden`` outside ``allowed``."""

    key: str
    name: str
    importers: tuple[str, ...]
    forbidden: tuple[str, ...]
    allowed: tuple[str, ...] = ()

    def forbids(self, module: str) -> bool:
        # An importer's parent packages never count: importing the importer runs them anyway.
        if within_any(module, self.allowed) or any(within(i, module) for i in self.importers):
            return False
        return within_any(module, self.forbidden)

    def covers(self, module: str) -> bool:
        return within_any(module, self.importers)


CORE_IS_PURE = Contract(
    "core", f"{CORE} imports nothing of hedger outside {CORE}", (CORE,), ("hedger",), (CORE,)
)
MARKET_WITHOUT_EXECUTION = Contract(
    "market", f"{MARKET} does not import {EXECUTION}", (MARKET,), (EXECUTION,)
)
EXECUTION_WITHOUT_MARKET = Contract(
    "execution", f"{EXECUTION} does not import {MARKET}", (EXECUTION,), (MARKET,)
)
OFFLINE_WITHOUT_LIVE = Contract(
    "offline",
    f"{', '.join(OFFLINE)} do not import the live daemon ({', '.join(LIVE_DAEMON)})",
    OFFLINE,
    LIVE_DAEMON,
)
CONTRACTS = (CORE_IS_PURE, MARKET_WITHOUT_EXECUTION, EXECUTION_WITHOUT_MARKET, OFFLINE_WITHOUT_LIVE)


# -- reading the tree -------------------------------------------------------------------------


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def modules() -> Mapping[str, Path]:
    """Every module of the tree by dotted name; a package by its ``__init__.py``."""
    found = {module_name(path): path for path in sorted(PACKAGE_DIR.rglob("*.py"))}
    assert CORE in found, f"no {CORE} package under {PACKAGE_DIR}"
    return found


def resolve_from(importer: str, node: ast.ImportFrom, *, is_package: bool) -> str:
    """The absolute name of the module a ``from ... import`` statement reads from."""
    if node.level == 0:
        return node.module or ""
    parts = (importer if is_package else importer.rpartition(".")[0]).split(".")
    if node.level > len(parts):
        raise AssertionError(f"{importer}, line {node.lineno}: relative import beyond the top")
    base = ".".join(parts[: len(parts) - node.level + 1])
    return f"{base}.{node.module}" if node.module else base


def imports_in(
    importer: str, source: str, *, is_package: bool, known: Collection[str]
) -> Iterator[Edge]:
    """Every module an import statement anywhere in ``source`` names (functions included)."""
    for node in ast.walk(ast.parse(source, filename=importer)):
        if isinstance(node, ast.Import):
            yield from (Edge(importer, alias.name, node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = resolve_from(importer, node, is_package=is_package)
            for alias in node.names:
                # `from hedger import config` imports the module hedger.config.
                submodule = f"{base}.{alias.name}"
                yield Edge(importer, submodule if submodule in known else base, node.lineno)


@cache
def import_graph() -> Mapping[str, tuple[Edge, ...]]:
    """Each module's direct imports of modules of ``hedger``, one edge per imported module."""
    graph = {}
    for name, path in modules().items():
        source = path.read_text(encoding="utf-8")
        edges: dict[str, Edge] = {}
        for edge in imports_in(
            name, source, is_package=path.name == "__init__.py", known=modules()
        ):
            if within(edge.imported, "hedger"):
                edges.setdefault(edge.imported, edge)
        graph[name] = tuple(edges.values())
    return graph


def direct_violations(contract: Contract) -> list[Edge]:
    return [
        edge
        for name, edges in import_graph().items()
        if contract.covers(name)
        for edge in edges
        if contract.forbids(edge.imported)
    ]


def runs_on_import(name: str) -> list[str]:
    """The modules importing ``name`` runs first: its imports and every parent ``__init__``."""
    targets = [edge.imported for edge in import_graph()[name]]
    for target in [name, *targets]:
        parts = target.split(".")
        targets.extend(".".join(parts[:i]) for i in range(1, len(parts)))
    # A name the tree does not hold is reported by its own test; a namespace package runs nothing.
    return [t for t in dict.fromkeys(targets) if t in modules() and t != name]


def indirect_violations(contract: Contract) -> list[str]:
    """Every forbidden import made by a module the contract does not cover but a covered module
    loads (a covered module's own import is the direct check's), with its shortest chain."""
    chains: dict[tuple[str, str], list[str]] = {}
    for start in sorted(name for name in modules() if contract.covers(name)):
        came_from = {start: ""}
        queue = deque([start])
        while queue:
            current = queue.popleft()
            for target in runs_on_import(current):
                if contract.forbids(target):
                    if contract.covers(current):
                        continue
                    chain = [target, current]
                    while came_from[chain[-1]]:
                        chain.append(came_from[chain[-1]])
                    best = chains.setdefault((current, target), chain)
                    if len(chain) < len(best):
                        chains[current, target] = chain
                elif target not in came_from:
                    came_from[target] = current
                    queue.append(target)
    return [" -> ".join(reversed(chain)) for chain in chains.values()]


def report(contract: Contract, broken: Collection[object]) -> str:
    lines = sorted({str(item) for item in broken})
    return f"broken contract: {contract.name} ({len(lines)}):\n  " + "\n  ".join(lines)


# -- the reader -------------------------------------------------------------------------------


def test_the_reader_sees_lazy_type_only_and_relative_imports() -> None:
    source = (
        "from __future__ import annotations\n"
        "from typing import TYPE_CHECKING\n"
        "from . import policy\n"
        "from .guards import check\n"
        "from .. import config\n"
        "if TYPE_CHECKING:\n"
        "    from hedger.live.engine import Engine\n"
        "def f() -> None:\n"
        "    import hedger.live.venue_link\n"
    )
    known = {"hedger", "hedger.core", "hedger.core.policy", "hedger.core.guards", "hedger.config"}
    edges = imports_in("hedger.core.cycle", source, is_package=False, known=known)
    assert [str(edge) for edge in edges if within(edge.imported, "hedger")] == [
        "hedger.core.cycle -> hedger.core.policy",
        "hedger.core.cycle -> hedger.core.guards",
        "hedger.core.cycle -> hedger.config",
        "hedger.core.cycle -> hedger.live.engine",
        "hedger.core.cycle -> hedger.live.venue_link",
    ]
    from_package = imports_in("hedger.core", "from . import policy", is_package=True, known=known)
    assert [edge.imported for edge in from_package] == ["hedger.core.policy"]


def test_every_hedger_import_names_a_module_of_the_tree() -> None:
    # An import the reader cannot resolve to a file would slip past the indirect check.
    unknown = [
        f"{edge} (line {edge.line})"
        for edges in import_graph().values()
        for edge in edges
        if edge.imported not in modules()
    ]
    assert not unknown, "imports of hedger modules that do not exist:\n  " + "\n  ".join(unknown)


# -- the contracts ----------------------------------------------------------------------------


def test_core_imports_nothing_of_hedger_outside_the_core() -> None:
    broken = direct_violations(CORE_IS_PURE)
    assert not broken, report(CORE_IS_PURE, broken)


def test_importing_the_core_loads_no_shell_library() -> None:
    # One fresh interpreter for all core modules: a library is charged to the first whose import
    # loads it.
    core = sorted(name for name in modules() if within(name, CORE))
    code = (
        "import importlib, json, sys\n"
        f"sys.path.insert(0, {str(ROOT)!r})\n"
        "loaded = {}\n"
        f"for name in {core!r}:\n"
        "    before = set(sys.modules)\n"
        "    importlib.import_module(name)\n"
        "    loaded[name] = sorted(\n"
        f"        lib for lib in {SHELL_LIBRARIES!r} if lib in sys.modules and lib not in before\n"
        "    )\n"
        "print(json.dumps(loaded))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        check=False,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, f"importing {CORE} failed:\n{result.stderr}"
    loaded: dict[str, list[str]] = json.loads(result.stdout.splitlines()[-1])
    assert set(loaded) == set(core)
    offenders = [f"{name} loads {', '.join(libs)}" for name, libs in loaded.items() if libs]
    assert not offenders, f"importing {CORE} loads shell libraries:\n  " + "\n  ".join(offenders)


@pytest.mark.parametrize(
    "contract", [MARKET_WITHOUT_EXECUTION, EXECUTION_WITHOUT_MARKET], ids=lambda c: c.key
)
def test_market_and_execution_do_not_import_each_other(contract: Contract) -> None:
    broken = direct_violations(contract)
    assert not broken, report(contract, broken)


def test_sim_paper_and_backtest_do_not_import_the_live_daemon() -> None:
    broken = direct_violations(OFFLINE_WITHOUT_LIVE)
    assert not broken, report(OFFLINE_WITHOUT_LIVE, broken)


@pytest.mark.parametrize("contract", CONTRACTS, ids=lambda c: c.key)
def test_no_contract_is_broken_through_another_module(contract: Contract) -> None:
    broken = indirect_violations(contract)
    assert not broken, report(contract, broken)
