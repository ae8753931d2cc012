"""PP-OCR (PaddleOCR): text detection (DB), text direction (0 or 180 degrees) and recognition (CTC) as three graphs.

The family ships its graphs as ONNX inside a Python package (`rapidocr-onnxruntime`, Apache-2.0): there is nothing to
export and no PyTorch version. Its registry row names the package, its version, and each graph's file and sha256, and
`studio.loading` runs those files with our own `OnnxBackend` (the same runtime badge as every other model). The
recognizer's character dictionary is stored in its own ONNX metadata (key "character"), which the loader hands to the
task as the GraphSet's metadata. The pre- and post-processing are in `studio.tasks.read_text`.
"""

from __future__ import annotations

from dataclasses import dataclass

from studio.families import GraphSpec

# The graphs ship as ONNX (see the module docstring): `studio.loading` reads them from the package, never exports.
SHIPS_ONNX = True


def _shipped(name: str, inputs: tuple[str, ...], outputs: tuple[str, ...], axes: dict) -> GraphSpec:
    """A graph that ships as ONNX: its names and dynamic axes are checked against the shipped file at load."""

    def no_pytorch(model):
        raise NotImplementedError("PP-OCR ships as ONNX only; it has no PyTorch module")

    return GraphSpec(name=name, input_names=inputs, output_names=outputs, dynamic_axes=axes, build=no_pytorch)


# The names the PaddlePaddle-to-ONNX converter gave the shipped graphs' inputs and outputs.
GRAPHS = (
    _shipped(
        "detector",
        ("x",),
        ("sigmoid_0.tmp_0",),
        {"x": {0: "batch", 2: "height", 3: "width"}, "sigmoid_0.tmp_0": {0: "batch", 2: "height", 3: "width"}},
    ),
    _shipped(
        "classifier",
        ("x",),
        ("save_infer_model/scale_0.tmp_1",),
        {"x": {0: "batch"}, "save_infer_model/scale_0.tmp_1": {0: "batch"}},
    ),
    _shipped(
        "recognizer",
        ("x",),
        ("softmax_11.tmp_0",),
        {"x": {0: "batch", 3: "width"}, "softmax_11.tmp_0": {0: "batch", 1: "steps"}},
    ),
)


@dataclass(frozen=True)
class OcrSettings:
    """The pre- and post-processing values the PP-OCRv4 mobile graphs were trained and evaluated with.

    They are the values of the package's own `config.yaml` (a test compares them), so our pipeline reads what the
    package's runner reads.
    """

    # Whole picture: a side above this is shrunk first (detection cost grows with the pixels; text stays legible).
    max_side: int = 2000
    # ... and a side below this is enlarged (the detector's feature maps are 1/32 of the input).
    min_side: int = 30
    # Very flat pictures (a one-line crop, a banner) are padded to at least this height and this width:height ratio,
    # so the detector sees a line with room around it.
    min_height: int = 30
    max_width_to_height: float = 8.0
    # Detection: the picture is scaled so that its SHORTER side is at least this many pixels, then to multiples
    # of 32 (PP-OCRv4's detection setting; small text stays several pixels high).
    detect_min_side: int = 736
    # DB post-processing: pixels above `binary_threshold` are text; a region is kept when its mean probability is
    # above `box_threshold`; its box is grown by `unclip_ratio` (DB shrinks text regions in training).
    binary_threshold: float = 0.3
    box_threshold: float = 0.5
    max_candidates: int = 1000
    unclip_ratio: float = 1.6
    dilate: bool = True
    # Direction: crops are resized to 48 x 192 (padded); turned over when the classifier says 180 with more than this.
    classify_height: int = 48
    classify_width: int = 192
    flip_threshold: float = 0.9
    # Recognition: crops are resized to height 48 and at least 320 wide (more for long lines), in batches of 6.
    recognize_height: int = 48
    recognize_width: int = 320
    batch: int = 6
    # Lines whose mean character probability is below this are dropped (the package's `text_score`).
    min_confidence: float = 0.5


SETTINGS = OcrSettings()


def package_config_values(config: dict) -> OcrSettings:
    """The settings a `rapidocr_onnxruntime/config.yaml` holds, as `OcrSettings` (to compare with ours)."""
    g, det, cls, rec = config["Global"], config["Det"], config["Cls"], config["Rec"]
    return OcrSettings(
        max_side=g["max_side_len"],
        min_side=g["min_side_len"],
        min_height=g["min_height"],
        max_width_to_height=float(g["width_height_ratio"]),
        detect_min_side=det["limit_side_len"] if det["limit_type"] == "min" else -1,
        binary_threshold=det["thresh"],
        box_threshold=det["box_thresh"],
        max_candidates=det["max_candidates"],
        unclip_ratio=det["unclip_ratio"],
        dilate=det["use_dilation"],
        classify_height=cls["cls_image_shape"][1],
        classify_width=cls["cls_image_shape"][2],
        flip_threshold=cls["cls_thresh"],
        recognize_height=rec["rec_img_shape"][1],
        recognize_width=rec["rec_img_shape"][2],
        batch=rec["rec_batch_num"] if rec["rec_batch_num"] == cls["cls_batch_num"] else -1,
        min_confidence=g["text_score"],
    )
