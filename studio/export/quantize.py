"""int8 variants: dynamic quantization of the MatMul-heavy graphs, accepted only if their embeddings stay close.

Dynamic quantization stores weights as int8 and quantizes activations on the fly, so it needs no calibration data;
it roughly halves CPU latency of a ViT image encoder. The result is compared with the fp32 graph on real photos and
refused below a cosine similarity of `MIN_COSINE`.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import numpy as np

from studio.atomic import replaced_on_success, temporary_prefix, write_json_atomic
from studio.errors import ExportError
from studio.export.exporter import parity_photos
from studio.export.manifest import MANIFEST, hash_graph, read_manifest
from studio.families import get_family
from studio.progress import Progress, no_progress

log = logging.getLogger(__name__)

MIN_COSINE = 0.99
VARIANT = "int8"


def quantize_export(directory: Path, progress: Progress = no_progress, min_cosine: float = MIN_COSINE) -> dict:
    """Adds an int8 variant of every quantizable graph to an export folder.

    Args:
        directory: An export folder with a manifest.
        progress: Receives fractions and sentences.
        min_cosine: The lowest accepted cosine similarity between int8 and fp32 outputs on real photos.

    Returns:
        The manifest entry of the variant.

    Raises:
        ExportError: Quantization failed or the int8 graph drifts too far from fp32.
    """
    from studio.backends.onnx import OnnxBackend

    manifest = read_manifest(directory)
    if manifest is None:
        raise ExportError(f"There is no export in {directory} to quantize. Export the model first.")
    family = get_family(manifest["family"])
    specs = [g for g in family.GRAPHS if g.quantizable]
    if not specs:
        raise ExportError("This model has no graph that Studio can quantize to int8.")
    inputs = family.parity_inputs(directory, parity_photos())
    entries = {}
    for i, spec in enumerate(specs):
        progress(i / len(specs), f"Quantizing the {spec.name.replace('_', ' ')} to int8…")
        final = directory / f"{spec.name}.{VARIANT}.onnx"
        with replaced_on_success(final) as tmp:
            quantize_graph(directory / manifest["graphs"][spec.name]["file"], tmp, spec.int8_weights_only)
            progress((i + 0.7) / len(specs), "Comparing int8 with fp32 on the example photos…")
            fp32 = OnnxBackend(directory / manifest["graphs"][spec.name]["file"], device="cpu").run(inputs[spec.name])
            int8 = OnnxBackend(tmp, device="cpu").run(inputs[spec.name])
            cos = cosine_rows(fp32[spec.output_names[0]], int8[spec.output_names[0]])
            if cos.min() < min_cosine:
                raise ExportError(
                    f"The int8 {spec.name.replace('_', ' ')} drifts too far from full precision (cosine similarity "
                    f"{cos.min():.4f} on the example photos, at least {min_cosine} needed), so it was not saved."
                )
        entries[spec.name] = {
            "file": final.name,
            "inputs": list(spec.input_names),
            "outputs": list(spec.output_names),
            "sha256": hash_graph(directory, final.name[: -len(".onnx")]),
            "cosine_to_fp32_min": float(cos.min()),
            "cosine_to_fp32_mean": float(cos.mean()),
            "method": "onnxruntime dynamic quantization, QInt8 weights, per-tensor"
            + (", weight MatMuls only" if spec.int8_weights_only else ""),
        }
    entry = {"graphs": entries, "min_cosine_required": min_cosine}
    # A family can ask more of int8 than close outputs (SmolVLM: the same greedy words on the example photos).
    check = getattr(family, "check_int8", None)
    if check is not None:
        progress(0.95, "Comparing int8 with fp32 answers on the example photos…")
        try:
            entry.update(
                check(directory, {name: directory / e["file"] for name, e in entries.items()}, parity_photos())
            )
        except ExportError:
            for e in entries.values():
                (directory / e["file"]).unlink(missing_ok=True)
            raise
    manifest.setdefault("variants", {})[VARIANT] = entry
    write_json_atomic(directory / MANIFEST, manifest)
    progress(1.0, "int8 variant saved.")
    return entry


def quantize_graph(src: Path, dst: Path, weights_only: bool = False) -> None:
    """Writes a dynamically quantized (int8 weights) copy of an ONNX graph.

    Args:
        src: The fp32 graph.
        dst: Where to write the int8 graph.
        weights_only: Leave MatMuls of two activations (attention) in float (`GraphSpec.int8_weights_only`).
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.shape_inference import quant_pre_process

    with tempfile.TemporaryDirectory(dir=dst.parent, prefix=temporary_prefix("", "quant")) as work:
        prepared = Path(work) / "prepared.onnx"
        try:
            # Shape inference and graph cleanup let the quantizer see every MatMul.
            quant_pre_process(str(src), str(prepared), skip_symbolic_shape=False)
        except Exception:  # noqa: BLE001 - pre-processing is an optimization; quantize the raw graph instead
            log.warning("quantization pre-processing failed for %s; quantizing the graph as exported", src.name)
            prepared = src
        try:
            quantize_dynamic(
                str(prepared),
                str(dst),
                weight_type=QuantType.QInt8,
                per_channel=False,
                extra_options={"MatMulConstBOnly": True} if weights_only else None,
            )
        except Exception as exc:
            raise ExportError(f"Quantizing {src.name} to int8 failed ({type(exc).__name__}).") from exc


def cosine_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine similarity of corresponding rows."""
    a = a.reshape(len(a), -1).astype(np.float64)
    b = b.reshape(len(b), -1).astype(np.float64)
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1) + 1e-12)
