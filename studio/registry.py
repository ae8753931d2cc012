"""The model registry: one row per model a tab can use, kept as data in `studio/models.toml`.

A row pins a Hugging Face hub id to a commit, names the family whose graphs it exports to (`studio.families`), and
carries the full-size architecture config that `studio bench` builds with random weights (no download needed).
Adding a model means adding a row to models.toml; adding an architecture means adding a family module too.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10
    import tomli as tomllib

ROWS_FILE = Path(__file__).with_name("models.toml")


@dataclass(frozen=True)
class ModelSpec:
    """One model a task can run.

    Attributes:
        task: The task (tab) it serves, e.g. "zero-shot".
        hub_id: Hugging Face repository id.
        revision: The pinned commit of that repository; users get exactly these weights. None only where no
            commit could be verified when the row was written (no hub access): the first download then pins the
            current commit in `<models-dir>/pins.json` and every later load uses it.
        family: The family module in `studio.families` that knows its graphs.
        title: What the model picker shows to people who do not read hub ids.
        licence: The weights' licence, shown beside the title.
        architecture: config.json fields of the full-size model, so benchmarks can build it with random weights.
        default: Whether the task uses this row when no model is chosen.
        package: For a model whose ONNX graphs ship inside a Python package (PP-OCR in rapidocr-onnxruntime): the
            package's distribution name. `revision` is then the package version the graphs were checked with, and
            `graphs` names each graph's file (relative to the package's folder) and sha256, so nothing is downloaded
            or exported and a changed file is refused.
        graphs: For a package row, {graph name: {"file", "sha256"}}.
        download_mb: About how many MB the first download is (None: not known; a package row downloads nothing).
    """

    task: str
    hub_id: str
    revision: str | None
    family: str
    title: str
    licence: str
    architecture: Mapping = field(default_factory=dict, repr=False)
    default: bool = False
    package: str | None = None
    graphs: Mapping = field(default_factory=dict, repr=False)
    download_mb: int | None = None

    @property
    def key(self) -> str:
        """The registry key, unique per task."""
        return f"{self.task}:{self.hub_id}"


class Registry:
    """Registry rows by key; a duplicate key is a programming error and fails loudly."""

    def __init__(self, rows: tuple[ModelSpec, ...] = ()) -> None:
        self._rows: dict[str, ModelSpec] = {}
        for row in rows:
            self.add(row)

    def add(self, spec: ModelSpec) -> None:
        """Adds a row.

        Raises:
            KeyError: A row with the same task and hub id exists.
        """
        if spec.key in self._rows:
            raise KeyError(f"duplicate registry row {spec.key}")
        if spec.default and any(r.default for r in self.for_task(spec.task)):
            raise KeyError(f"two default models for task {spec.task}")
        self._rows[spec.key] = spec

    def __iter__(self) -> Iterator[ModelSpec]:
        return iter(self._rows.values())

    def tasks(self) -> list[str]:
        """Every task with a row, in the registry's order."""
        return list(dict.fromkeys(spec.task for spec in self))

    def for_task(self, task: str) -> list[ModelSpec]:
        """Rows serving one task, default first."""
        return sorted((r for r in self._rows.values() if r.task == task), key=lambda r: not r.default)

    def default_for(self, task: str) -> ModelSpec:
        """The task's default row."""
        for row in self.for_task(task):
            if row.default:
                return row
        raise KeyError(f"no default model for task {task}")

    def find(self, task: str, hub_id: str) -> ModelSpec | None:
        """The row for a hub id (case-insensitive, as the hub is), or None."""
        for row in self.for_task(task):
            if row.hub_id.lower() == hub_id.lower():
                return row
        return None


def read_rows(path: Path = ROWS_FILE) -> tuple[ModelSpec, ...]:
    """The rows of a registry file (`studio/models.toml`), architectures made read-only."""
    with open(path, "rb") as fh:
        data = tomllib.load(fh)
    return tuple(
        ModelSpec(
            task=row["task"],
            hub_id=row["hub_id"],
            revision=row.get("revision"),
            family=row["family"],
            title=row["title"],
            licence=row["licence"],
            architecture=MappingProxyType(row.get("architecture", {})),
            default=row.get("default", False),
            package=row.get("package"),
            graphs=MappingProxyType({name: dict(graph) for name, graph in row.get("graphs", {}).items()}),
            download_mb=row.get("download_mb"),
        )
        for row in data["model"]
    )


REGISTRY = Registry(read_rows())
