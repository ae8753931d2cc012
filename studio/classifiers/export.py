"""A saved classifier as ONE ONNX graph: pixel values -> the model's image encoder -> the blended head -> probabilities.

Exported with the same exporter and parity check as the model's own graphs (`studio.export.exporter`), so the graph is
refused unless it agrees with PyTorch on real photos; the measured difference is recorded in the version's head.json.
"""

from __future__ import annotations

import logging
from pathlib import Path

from studio.classifiers.heads import Head
from studio.families import GraphSpec
from studio.progress import Progress, no_progress

log = logging.getLogger(__name__)


def classifier_module(image_encoder, head: Head):
    """The image encoder and a trained head as one module: pixel_values -> probabilities (blended), image_embeds."""
    import torch

    class ClassifierGraph(torch.nn.Module):
        """pixel_values (N, 3, H, W) -> probabilities (N, C), image_embeds (N, D) normalized."""

        def __init__(self):
            super().__init__()
            self.image_encoder = image_encoder
            self.register_buffer("weight", torch.from_numpy(head.weight.astype("float32")))
            self.register_buffer("bias", torch.from_numpy(head.bias.astype("float32")))
            self.register_buffer("text_embeds", torch.from_numpy(head.text_embeds.astype("float32")))
            self.logit_scale = float(head.logit_scale)
            self.blend = float(head.blend)

        def forward(self, pixel_values):
            embeds = self.image_encoder(pixel_values)
            embeds = embeds / embeds.norm(dim=-1, keepdim=True).clamp_min(1e-12)
            zero_shot = torch.softmax(self.logit_scale * embeds @ self.text_embeds.T, dim=-1)
            trained = torch.softmax(embeds @ self.weight.T + self.bias, dim=-1)
            return (1.0 - self.blend) * zero_shot + self.blend * trained, embeds

    return ClassifierGraph().eval()


GRAPH = GraphSpec(
    name="classifier",
    input_names=("pixel_values",),
    output_names=("probabilities", "image_embeds"),
    dynamic_axes={"pixel_values": {0: "batch"}, "probabilities": {0: "batch"}, "image_embeds": {0: "batch"}},
    build=None,
    tolerance={"atol": 1e-4, "rtol": 1e-3},
)


def buildclassifier_module(model_dir: Path, head: Head):
    """The PyTorch module the ONNX graph is exported from (the family's image encoder wrapper + the head)."""
    from studio.families import get_family

    family = get_family("clip")
    clip = family.load_model(model_dir)
    encoder = next(g for g in family.GRAPHS if g.name == "image_encoder").build(clip)
    return classifier_module(encoder, head)


def export_classifier(model_dir: Path, head: Head, path: Path, progress: Progress = no_progress) -> dict:
    """Exports image encoder + head to `path` and checks it against PyTorch on the example photos.

    Args:
        model_dir: The zero-shot model's folder.
        head: The trained head.
        path: Where the graph goes.
        progress: Told each step in words (loading, exporting, checking) with its share of the time.

    Returns:
        {"file", "max_abs_diff", "tolerance", "inputs", "outputs"}.

    Raises:
        ExportError: The export failed or disagrees with PyTorch.
    """
    from studio.export.exporter import OPSET, check_parity, export_graph, parity_photos
    from studio.media.image import ImagePreprocessing

    progress(0.0, "Loading the image encoder in PyTorch (step 1 of 3)…")
    module = buildclassifier_module(model_dir, head)
    pixels = ImagePreprocessing.from_dir(model_dir).batch(parity_photos())
    example = {"pixel_values": pixels}
    progress(0.2, "Exporting the image encoder and head to ONNX (step 2 of 3)…")
    export_graph(module, GRAPH, example, path)
    progress(0.7, "Checking the ONNX graph against PyTorch (step 3 of 3)…")
    diff = check_parity(module, GRAPH, example, path)
    progress(1.0, "Exported and checked.")
    return {
        "file": path.name,
        "inputs": list(GRAPH.input_names),
        "outputs": list(GRAPH.output_names),
        "opset": OPSET,
        "max_abs_diff": diff,
        "tolerance": GRAPH.tolerance,
    }


def classifier_graph_writer(
    model: str | None, models_dir: Path, head: Head, notices: list[str], progress: Progress = no_progress
):
    """A writer for `ClassifierStore.save_version`: exports the graph, or records why it could not.

    An export that cannot be made (the model's weights are not on this machine, or the exporter fails) does not stop
    the save: the head works without it, and the reason is said in `notices` and in head.json.
    """

    def write(path: Path) -> dict:
        from studio.errors import StudioError
        from studio.sources import resolve

        try:
            source = resolve(model, "zero-shot", models_dir)
            if source.local_dir is None:
                raise StudioError(f"the model {source.display_name} is not on this computer")
            return {"exported": True, **export_classifier(source.local_dir, head, path, progress)}
        except StudioError as exc:
            reason = str(exc).rstrip(".")
            notices.append(f"Saved without the ONNX graph of image encoder and head: {reason}.")
            path.unlink(missing_ok=True)
            return {"exported": False, "reason": reason}

    return write
