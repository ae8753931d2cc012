"""The shape of studio/: data flows one way, no import cycles, no private names borrowed across modules, the command
line is built from tables, and building it imports nothing heavy."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO

STUDIO = REPO / "studio"


def _modules() -> dict[str, Path]:
    out = {}
    for path in STUDIO.rglob("*.py"):
        name = ".".join(path.relative_to(REPO).with_suffix("").parts)
        out[name.removesuffix(".__init__")] = path
    return out


MODULES = _modules()


def _owner(name: str) -> str | None:
    """The studio module a dotted name lives in (a module, or the module defining an attribute)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imports(path: Path):
    """(imported module, imported name or None) for every import statement, lazy ones inside functions too."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, None
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                yield node.module, alias.name


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for module, path in MODULES.items():
        for imported, name in _imports(path):
            if not imported.startswith("studio"):
                continue
            target = _owner(f"{imported}.{name}" if name and f"{imported}.{name}" in MODULES else imported)
            if target and target != module:
                graph[module].add(target)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one member (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_no_import_cycle_between_modules():
    assert _cycles(_graph()) == []


def test_no_import_cycle_between_packages():
    """studio.ui -> studio.services -> studio.tasks -> studio.families ...: no package imports one that imports it."""
    packages: dict[str, set[str]] = {}
    for module, targets in _graph().items():
        for target in targets:
            a, b = ".".join(module.split(".")[:2]), ".".join(target.split(".")[:2])
            if a != b:
                packages.setdefault(a, set()).add(b)
    assert _cycles(packages) == []


def test_no_private_name_is_imported_from_another_module():
    borrowed = [
        f"{module} imports {imported}.{name}"
        for module, path in MODULES.items()
        for imported, name in _imports(path)
        if imported.startswith("studio") and name and name.startswith("_") and f"{imported}.{name}" not in MODULES
    ]
    assert borrowed == []


@pytest.mark.parametrize(
    "package, forbidden",
    [("tasks", {"gradio", "onnxruntime"}), ("services", {"gradio"}), ("media", {"gradio"}), ("cli", {"gradio"})],
)
def test_layers_import_only_what_they_may(package, forbidden):
    """Nothing below the UI imports gradio; tasks never touch onnxruntime (the backends do)."""
    wrong = [
        f"{module} imports {imported}"
        for module, path in MODULES.items()
        if module.startswith(f"studio.{package}")
        for imported, _ in _imports(path)
        if imported.split(".")[0] in forbidden
    ]
    assert wrong == []


def test_the_command_line_is_built_from_tables_without_heavy_imports():
    code = (
        "import sys; from studio.cli import COMMANDS, build_parser; build_parser(); "
        "print(sorted(m for m in ('torch', 'numpy', 'gradio', 'onnxruntime', 'transformers') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert done.stdout.strip() == "[]"

    from studio.cli import COMMANDS
    from studio.cli.common import TASKS, Command, Group

    assert set(COMMANDS["predict"].commands) == set(TASKS)
    for entry in COMMANDS.values():
        rows = entry.commands.values() if isinstance(entry, Group) else [entry]
        assert all(isinstance(row, Command) for row in rows)


def test_every_task_of_the_registry_has_a_predict_row_and_a_service():
    import importlib

    from studio.cli.common import TASKS
    from studio.registry import REGISTRY

    assert {spec.task for spec in REGISTRY} == set(TASKS)
    for module in ("zero_shot", "caption", "ask", "transcribe", "video", "sound_scene", "classifiers", "read_text"):
        services = importlib.import_module(f"studio.services.{module}")
        assert any(name.endswith("Service") for name in vars(services)), module
