"""Exports a model's graphs to ONNX, checks each against PyTorch on real inputs, and writes the manifest.

The export is built in a temporary folder beside its destination and renamed into place only when every graph passed
its parity check, so a failed or interrupted export never leaves a half-written folder where the app looks.
"""

from __future__ import annotations

import datetime as dt
import logging
import warnings
from pathlib import Path

import numpy as np

from studio.atomic import directory_replaced_on_success, write_json_atomic
from studio.errors import ExportError
from studio.export.manifest import FORMAT_VERSION, MANIFEST, hash_graph
from studio.families import get_family
from studio.media.image import load_image
from studio.paths import assets_dir
from studio.progress import Progress, no_progress
from studio.sources import ModelSource, directory_fingerprint, directory_sha256

log = logging.getLogger(__name__)

OPSET = 18
# Graphs above this size keep their weights in an external .onnx.data file (protobuf's 2 GB limit).
_EXTERNAL_DATA_BYTES = 1_800_000_000


def export_dir(models_dir: Path, source: ModelSource) -> Path:
    """Where a model's export lives: `<models-dir>/<task>/<slug>/`."""
    return Path(models_dir) / source.task / source.slug


def parity_photos() -> list:
    """The real photos every export is checked on (shipped in assets/)."""
    photos = sorted((assets_dir() / "images").glob("*.jpg"))
    if not photos:
        raise ExportError("The example photos in assets/images are missing, so the export cannot be checked.")
    return [load_image(p) for p in photos]


def export_model(source: ModelSource, models_dir: Path, progress: Progress = no_progress) -> Path:
    """Exports every graph of a model and checks it against PyTorch.

    Args:
        source: A source whose files are on this machine (`sources.fetch` first).
        models_dir: Root of the exports; the result goes to `<models-dir>/<task>/<slug>/`.
        progress: Receives fractions and sentences.

    Returns:
        The export folder.

    Raises:
        ExportError: A graph failed to export or differs from PyTorch beyond its tolerance.
    """
    if source.local_dir is None:
        raise ExportError(f"The model {source.display_name} is not on this computer, so it cannot be exported.")
    family = get_family(source.family)
    if not getattr(family, "EXPORTABLE", True):
        raise ExportError(f"{source.display_name} runs with PyTorch only for now; it has no ONNX export.")
    final = export_dir(models_dir, source)
    with directory_replaced_on_success(final, "exporting") as tmp:
        progress(0.02, f"Loading the model ({Path(source.display_name).name}) in PyTorch…")
        model = family.load_model(source.local_dir)
        family.save_files(source.local_dir, tmp)
        inputs = family.parity_inputs(tmp, parity_photos(), model)
        graphs = {}
        n = len(family.GRAPHS)
        for i, spec in enumerate(family.GRAPHS):
            progress(0.1 + 0.8 * i / n, f"Exporting the {spec.name.replace('_', ' ')} to ONNX ({i + 1} of {n})…")
            module = spec.build(model).eval()
            example = inputs[spec.name]
            export_graph(module, spec, example, tmp / f"{spec.name}.onnx")
            progress(0.1 + 0.8 * (i + 0.8) / n, f"Checking the {spec.name.replace('_', ' ')} against PyTorch…")
            diff = check_parity(module, spec, example, tmp / f"{spec.name}.onnx")
            graphs[spec.name] = {
                "file": f"{spec.name}.onnx",
                "inputs": list(spec.input_names),
                "outputs": list(spec.output_names),
                "dynamic_axes": {k: {str(a): v for a, v in axes.items()} for k, axes in spec.dynamic_axes.items()},
                "max_abs_diff": diff,
                "tolerance": spec.tolerance,
                "sha256": hash_graph(tmp, spec.name),
            }
        progress(0.93, "Writing the manifest…")
        manifest = {
            "format": FORMAT_VERSION,
            "task": source.task,
            "family": source.family,
            "source": _source_record(source),
            "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "opset": OPSET,
            "versions": _versions(),
            "parity_inputs": getattr(family, "PARITY_INPUTS", "assets/images/*.jpg and fixed prompts"),
            "graphs": graphs,
            "variants": {},
            "metadata": family.metadata(model),
        }
        write_json_atomic(tmp / MANIFEST, manifest)
    progress(1.0, "Exported and checked against PyTorch.")
    log.info("exported %s to %s", source.display_name, final)
    return final


def export_graph(module, spec, example: dict[str, np.ndarray], path: Path) -> None:
    """Exports one wrapper module to ONNX with the graph's names and dynamic axes (dynamo exporter)."""
    import torch

    args = tuple(torch.from_numpy(example[name]) for name in spec.input_names)
    n_bytes = sum(p.numel() * p.element_size() for p in module.parameters())
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                module,
                args,
                str(path),
                input_names=list(spec.input_names),
                output_names=list(spec.output_names),
                dynamic_axes=spec.dynamic_axes,
                opset_version=OPSET,
                dynamo=True,
                external_data=n_bytes > _EXTERNAL_DATA_BYTES,
                verbose=False,
            )
    except Exception as exc:
        log.exception("ONNX export of %s failed", spec.name)
        raise ExportError(
            f"Exporting the {spec.name.replace('_', ' ')} to ONNX failed ({type(exc).__name__}). "
            "The app can still run this model with PyTorch."
        ) from exc


def check_parity(module, spec, example: dict[str, np.ndarray], path: Path) -> float:
    """Runs the exported graph (CPU) and the PyTorch module on the same inputs.

    Returns:
        The largest absolute difference over all outputs.

    Raises:
        ExportError: The difference exceeds the graph's tolerance (as `torch.testing.assert_close` measures it).
    """
    import torch

    from studio.backends.onnx import OnnxBackend

    onnx_out = OnnxBackend(path, device="cpu").run(example)
    with torch.inference_mode():
        ref = module(*(torch.from_numpy(example[n]) for n in spec.input_names))
    ref = ref if isinstance(ref, (tuple, list)) else (ref,)
    worst = 0.0
    for name, expected in zip(spec.output_names, ref):
        actual = torch.from_numpy(onnx_out[name])
        worst = max(worst, float((actual - expected).abs().max()))
        try:
            torch.testing.assert_close(actual, expected, **spec.tolerance)
        except AssertionError as exc:
            raise ExportError(
                f"The exported {spec.name.replace('_', ' ')} gives different results from PyTorch (largest "
                f"difference {worst:.2g}, allowed {spec.tolerance['atol']:.0e}), so the export was refused."
            ) from exc
    return worst


def _source_record(source: ModelSource) -> dict:
    if source.is_hub:
        return {"kind": "hub", "id": source.spec.hub_id, "revision": source.revision, "origin": source.origin}
    return {
        "kind": "directory",
        "path": str(source.local_dir),
        "sha256": directory_sha256(source.local_dir),
        "fingerprint": directory_fingerprint(source.local_dir),
    }


def _versions() -> dict:
    import onnx
    import onnxruntime
    import torch
    import transformers

    return {
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "onnx": onnx.__version__,
        "onnxruntime": onnxruntime.__version__,
    }
