"""Reading text (PP-OCR): find the text lines in a picture, turn each upright, read it, and put the lines in reading
order.

Pipeline, as PaddleOCR runs its PP-OCRv4 mobile graphs (and as the `rapidocr-onnxruntime` package's own runner does, on
the same graphs; a test compares the two):

1. Detection (DB, "Differentiable Binarization"): the picture, scaled so its shorter side is 736 pixels, gives a map of
   text probability; pixels above 0.3 form regions, each region's minimum-area rectangle is kept if its mean
   probability exceeds 0.5, then grown back by `unclip_ratio` (DB learns shrunk regions) with pyclipper's polygon
   offset, and scaled to the picture's pixels.
2. Each box is cut out with a perspective warp (so tilted lines come out level); boxes at least 1.5 times taller than
   wide are turned a quarter (a vertical line).
3. Direction: a small classifier says 0 or 180 degrees; crops it is sure (> 0.9) are upside down are turned over.
4. Recognition (SVTR-LCNet with a CTC head): crops are resized to height 48 and batched by width; each time step's most
   probable class is kept, repeats and blanks dropped (greedy CTC), and the line's confidence is the mean probability
   of its characters. The recognizer drops some spaces between words; where the space class still has some weight
   between two characters, a space is put back (`restore_spaces`).
5. Reading order: the boxes are turned as most lines had to be turned to be read (a page upside down or on its
   side) and levelled by their median angle, then cut recursively (XY-cut) at wide vertical gutters (columns, read
   left to right) and at the gaps between rows (read top to bottom); a row's boxes are read left to right.

The code here is our own (numpy, OpenCV, pyclipper, shapely); nothing of the package is imported, since its modules
import onnxruntime and tasks must not.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from studio.families.ppocr import SETTINGS, OcrSettings
from studio.tasks.base import GraphTask
from studio.tasks.phrasing import hedged

TASK = "read-text"
# The recognizer's confidence is the mean probability of a line's characters. Measured on the test pictures
# (tests/test_read_text_quality.py): printed lines, clean or camera-like, down to 9-pixel text, read 0.93 to 1.0
# (the few with a wrong character 0.93 to 0.97); the handwritten formulas of scikit-image's data.text(), which it
# cannot read, 0.59 to 0.63. Readings below these levels are said as "Probably ..." / "I'm not sure ...".
UNSURE_BELOW = 0.9
GUESSING_BELOW = 0.65
# A space left out between two characters still has some weight at a time step between them: more than this
# probability, and more than this share of what is not blank there. Measured on the rendered test pages, clean and
# camera-like (541 pairs of characters): every left-out space had a probability of 0.0036 or more and a share of 0.88
# or more; pairs without a space reached 0.009 and 0.88, but never both at one step.
SPACE_PROBABILITY = 0.002
SPACE_SHARE = 0.85
# Never put a space back before closing punctuation or after opening punctuation (monospaced fonts leave room there).
NO_SPACE_BEFORE = set(" ,.;:!?)]}%'\"")
NO_SPACE_AFTER = set(" ([{$'\"")


@dataclass(frozen=True)
class TextLine:
    """One line of text found in a picture.

    Attributes:
        text: What it says.
        confidence: Mean probability of its characters, in [0, 1].
        box: Its four corners in the picture's pixels, clockwise from the top left of the text: [[x, y]] * 4.
        upside_down: The direction classifier turned it over before reading.
    """

    text: str
    confidence: float
    box: list
    upside_down: bool = False

    def as_dict(self) -> dict:
        return {
            "text": self.text,
            "confidence": round(self.confidence, 4),
            "box": [[round(float(x), 1), round(float(y), 1)] for x, y in self.box],
            "upside_down": self.upside_down,
        }


@dataclass
class ReadResult:
    """The text of one picture.

    Attributes:
        lines: The lines in reading order.
        rows: Indices into `lines`, one list per row of text (a row's boxes left to right), rows in reading order.
        said: The text phrased for listeners (hedged when the reading is unsure).
        certainty: "sure", "unsure", "guessing", or "none" when no text was found.
        detect_ms, classify_ms, recognize_ms: Time in each stage.
        dropped: Lines read with confidence below the minimum, left out.
        width, height: The picture's size.
    """

    lines: list[TextLine]
    rows: list[list[int]]
    said: str
    certainty: str
    detect_ms: float
    classify_ms: float
    recognize_ms: float
    dropped: int = 0
    width: int = 0
    height: int = 0

    @property
    def text(self) -> str:
        """The lines in reading order: a row's lines joined by spaces, rows by new lines."""
        return "\n".join(" ".join(self.lines[i].text for i in row) for row in self.rows)

    @property
    def confidence(self) -> float:
        """The mean character probability over all lines (each line weighted by its length); 0 with no text."""
        weights = [max(len(line.text), 1) for line in self.lines]
        if not weights:
            return 0.0
        return float(sum(w * line.confidence for w, line in zip(weights, self.lines)) / sum(weights))

    @property
    def latency_ms(self) -> float:
        return self.detect_ms + self.classify_ms + self.recognize_ms

    def as_dict(self) -> dict:
        return {
            "text": self.said,
            "model_text": self.text,
            "confidence": round(self.confidence, 4),
            "certainty": self.certainty,
            "lines": [line.as_dict() for line in self.lines],
            "rows": self.rows,
            "dropped_lines": self.dropped,
            "width": self.width,
            "height": self.height,
            "latency_ms": round(self.latency_ms, 2),
            "detect_ms": round(self.detect_ms, 2),
            "classify_ms": round(self.classify_ms, 2),
            "recognize_ms": round(self.recognize_ms, 2),
        }


class ReadTextTask(GraphTask):
    """Finds and reads the text in pictures with PP-OCR's detector, direction classifier and recognizer graphs."""

    TASK = TASK

    def __init__(self, graphs) -> None:
        super().__init__(graphs)
        self.settings: OcrSettings = SETTINGS
        # The recognizer's classes: CTC blank, the dictionary stored in its ONNX metadata, then a space.
        self.characters = ["", *str(graphs.metadata["character"]).splitlines(), " "]

    def __call__(
        self, image, *, min_confidence: float | None = None, restore_spaces: bool = True, channel_order: str = "RGB"
    ) -> ReadResult:
        """Reads the text in a picture.

        Args:
            image: Path, bytes, PIL image or array.
            min_confidence: Lines read with a lower confidence are left out (default: the model's 0.5).
            restore_spaces: Put back spaces the recognizer left out between words.
            channel_order: "RGB", or "BGR" for OpenCV frames.
        """
        from studio.media.image import load_image

        picture = np.asarray(load_image(image, channel_order))[:, :, ::-1]  # PP-OCR was trained on BGR (cv2.imread)
        return self.read(np.ascontiguousarray(picture), min_confidence, restore_spaces)

    def read(self, bgr: np.ndarray, min_confidence: float | None = None, restore_spaces: bool = True) -> ReadResult:
        """Reads a BGR uint8 picture (H, W, 3); see `__call__`."""
        s = self.settings
        min_confidence = s.min_confidence if min_confidence is None else float(min_confidence)
        height, width = bgr.shape[:2]
        started = time.perf_counter()
        scaled, sx, sy = fit_sides(bgr, s.max_side, s.min_side)
        padded, top = letterboxed(scaled, s.min_height, s.max_width_to_height)
        boxes = self.detect(padded)
        detected = time.perf_counter()
        crops = [crop_line(padded, box) for box in boxes]
        crops, flipped = self.upright(crops)
        classified = time.perf_counter()
        reads = self.recognize(crops, restore_spaces)
        recognized = time.perf_counter()

        lines, dropped = [], 0
        for box, upside_down, (text, confidence) in zip(boxes, flipped, reads):
            if confidence < min_confidence or not text.strip():
                dropped += 1
                continue
            original = box.astype(np.float64) - [0, top]
            original *= [sx, sy]
            original = np.clip(original, 0, [width, height])
            lines.append(TextLine(text.strip(), float(confidence), original.tolist(), bool(upside_down)))
        rows = reading_order(
            [np.asarray(line.box) for line in lines],
            [quarter_turns(np.asarray(line.box), line.upside_down) for line in lines],
        )
        ordered = [i for row in rows for i in row]
        remap = {old: new for new, old in enumerate(ordered)}
        result = ReadResult(
            lines=[lines[i] for i in ordered],
            rows=[[remap[i] for i in row] for row in rows],
            said="",
            certainty="none",
            detect_ms=(detected - started) * 1000,
            classify_ms=(classified - detected) * 1000,
            recognize_ms=(recognized - classified) * 1000,
            dropped=dropped,
            width=width,
            height=height,
        )
        result.said, result.certainty = phrased(result)
        return result

    # The three graphs -------------------------------------------------------------------------------------------

    def _run(self, name: str, pixels: np.ndarray) -> np.ndarray:
        """Runs one graph on its one input, by the names its family declares; returns its one output."""
        spec = next(g for g in self.family.GRAPHS if g.name == name)
        return self.graphs.graphs[name].run({spec.input_names[0]: pixels})[spec.output_names[0]]

    def detect(self, bgr: np.ndarray) -> list[np.ndarray]:
        """Text boxes (4x2 float32 corners, clockwise from top left) in the pixels of `bgr`, in the detector's order."""
        s = self.settings
        probability = self._run("detector", detector_input(bgr, s.detect_min_side))[0, 0]
        height, width = bgr.shape[:2]
        boxes = []
        for box in db_boxes(probability, width, height, s):
            box = clockwise(box)
            box[:, 0] = np.clip(box[:, 0], 0, width - 1).astype(np.int64)
            box[:, 1] = np.clip(box[:, 1], 0, height - 1).astype(np.int64)
            if int(np.linalg.norm(box[0] - box[1])) <= 3 or int(np.linalg.norm(box[0] - box[3])) <= 3:
                continue
            boxes.append(box.astype(np.float32))
        return boxes

    def upright(self, crops: list[np.ndarray]) -> tuple[list[np.ndarray], list[bool]]:
        """The crops with those the direction classifier is sure are upside down turned over, and which were."""
        import cv2

        s = self.settings
        crops, flipped = list(crops), [False] * len(crops)
        for batch in _batches_by_width(crops, s.batch):
            pixels = np.stack([_padded_line(crops[i], s.classify_height, s.classify_width) for i in batch])
            probabilities = self._run("classifier", pixels)
            for i, p in zip(batch, probabilities):
                if int(np.argmax(p)) == 1 and float(p[1]) > s.flip_threshold:  # labels: "0", "180"
                    crops[i] = cv2.rotate(crops[i], cv2.ROTATE_180)
                    flipped[i] = True
        return crops, flipped

    def recognize(self, crops: list[np.ndarray], restore_spaces: bool = True) -> list[tuple[str, float]]:
        """(text, confidence) of each crop, in the crops' order."""
        s = self.settings
        out: list[tuple[str, float]] = [("", 0.0)] * len(crops)
        for batch in _batches_by_width(crops, s.batch):
            widest = max(s.recognize_width / s.recognize_height, *(_ratio(crops[i]) for i in batch))
            width = int(s.recognize_height * widest)
            pixels = np.stack([_padded_line(crops[i], s.recognize_height, width) for i in batch])
            probabilities = self._run("recognizer", pixels)
            for i, p in zip(batch, probabilities):
                out[i] = ctc_greedy(p, self.characters, restore_spaces)
        return out


# Phrasing -----------------------------------------------------------------------------------------------------------


def phrased(result: ReadResult) -> tuple[str, str]:
    """What to say for a reading, and how sure it is (see `phrase`)."""
    rows = [" ".join(result.lines[i].text for i in row) for row in result.rows]
    return phrase(rows, result.confidence)


def phrase(rows: list[str], confidence: float) -> tuple[str, str]:
    """Rows of text as sentences for a listener, hedged by the reading's confidence (`phrasing.hedged` at this model's
    levels). A row that ends without punctuation gets a full stop (so a voice pauses there) unless the next row goes
    on in lower case, as the lines of a paragraph do.

    Returns:
        The words to say and the certainty: "sure", "unsure", "guessing", or "none" when there is no text.
    """
    rows = [row.strip() for row in rows if row.strip()]
    if not rows:
        return "No text found.", "none"
    parts = []
    for row, following in zip(rows, rows[1:]):
        goes_on = row[-1:] in ".!?:;,-" or following[:1].islower()
        parts.append(row if goes_on else f"{row}.")
    spoken = " ".join([*parts, rows[-1].rstrip(",;:-")])
    return hedged(
        spoken,
        confidence,
        not_sure="I'm not sure what this says.",
        unsure_below=UNSURE_BELOW,
        guessing_below=GUESSING_BELOW,
        capitalize=False,
    )


# Pre-processing -----------------------------------------------------------------------------------------------------


def _round32(x: float) -> int:
    return int(round(x / 32) * 32)


def fit_sides(bgr: np.ndarray, max_side: int, min_side: int) -> tuple[np.ndarray, float, float]:
    """Shrinks a picture whose longer side exceeds `max_side`, then enlarges one whose shorter side is under
    `min_side`, each time to sides that are multiples of 32; returns it and the factors (x, y) from its pixels back
    to the original's."""
    import cv2

    from studio.errors import BadImageError

    height, width = bgr.shape[:2]
    sx = sy = 1.0
    for needed, ratio_of in (
        (lambda h, w: max(h, w) > max_side, lambda h, w: max_side / max(h, w)),
        (lambda h, w: min(h, w) < min_side, lambda h, w: min_side / min(h, w)),
    ):
        h, w = bgr.shape[:2]
        if not needed(h, w):
            continue
        ratio = ratio_of(h, w)
        new_h, new_w = _round32(int(h * ratio)), _round32(int(w * ratio))
        if new_h <= 0 or new_w <= 0:
            raise BadImageError(f"The picture is too thin to read text in ({width}x{height} pixels).")
        bgr = cv2.resize(bgr, (new_w, new_h))
        sx, sy = sx * w / new_w, sy * h / new_h
    return bgr, sx, sy


def letterboxed(bgr: np.ndarray, min_height: int, max_ratio: float) -> tuple[np.ndarray, int]:
    """Pads a very flat picture with black above and below; returns it and the padding on top."""
    import cv2

    h, w = bgr.shape[:2]
    if h > min_height and w / h <= max_ratio:
        return bgr, 0
    pad = int(abs(max(int(w / max_ratio), min_height) * 2 - h) / 2)
    return cv2.copyMakeBorder(bgr, pad, pad, 0, 0, cv2.BORDER_CONSTANT, value=(0, 0, 0)), pad


def detector_input(bgr: np.ndarray, min_side: int) -> np.ndarray:
    """(1, 3, H, W) float32: scaled so the shorter side is at least `min_side`, sides multiples of 32, in [-1, 1]."""
    import cv2

    h, w = bgr.shape[:2]
    ratio = min_side / min(h, w) if min(h, w) < min_side else 1.0
    new_h, new_w = _round32(int(h * ratio)), _round32(int(w * ratio))
    resized = cv2.resize(bgr, (new_w, new_h)).astype(np.float32)
    return ((resized / 255.0 - 0.5) / 0.5).transpose(2, 0, 1)[None].astype(np.float32)


def _ratio(crop: np.ndarray) -> float:
    return crop.shape[1] / float(crop.shape[0])


def _batches_by_width(crops: list[np.ndarray], size: int) -> list[list[int]]:
    """Crop indices in batches of `size`, narrowest first (similar widths pad least)."""
    order = np.argsort([_ratio(c) for c in crops]) if crops else []
    return [list(map(int, order[i : i + size])) for i in range(0, len(crops), size)]


def _padded_line(crop: np.ndarray, height: int, width: int) -> np.ndarray:
    """(3, height, width) float32: the crop resized to `height` (keeping its aspect, at most `width` wide), scaled to
    [-1, 1], padded with zeros on the right."""
    import cv2

    resized_w = min(width, int(math.ceil(height * _ratio(crop))))
    resized = cv2.resize(crop, (resized_w, height)).astype(np.float32)
    out = np.zeros((3, height, width), dtype=np.float32)
    out[:, :, :resized_w] = (resized.transpose(2, 0, 1) / 255.0 - 0.5) / 0.5
    return out


def crop_line(bgr: np.ndarray, box: np.ndarray) -> np.ndarray:
    """The text of a box, cut out level with a perspective warp; a box 1.5 times taller than wide is turned a quarter
    (counter-clockwise: text written top to bottom then reads left to right)."""
    import cv2

    box = box.astype(np.float32)
    width = int(max(np.linalg.norm(box[0] - box[1]), np.linalg.norm(box[2] - box[3])))
    height = int(max(np.linalg.norm(box[0] - box[3]), np.linalg.norm(box[1] - box[2])))
    target = np.array([[0, 0], [width, 0], [width, height], [0, height]], dtype=np.float32)
    warp = cv2.getPerspectiveTransform(box, target)
    crop = cv2.warpPerspective(bgr, warp, (width, height), borderMode=cv2.BORDER_REPLICATE, flags=cv2.INTER_CUBIC)
    if crop.shape[0] / crop.shape[1] >= 1.5:
        crop = np.rot90(crop)
    return crop


# DB post-processing -------------------------------------------------------------------------------------------------


def db_boxes(probability: np.ndarray, width: int, height: int, s: OcrSettings) -> list[np.ndarray]:
    """The text boxes of a DB probability map (h, w), as 4x2 corners in a picture of `width` x `height` pixels.

    Regions above the binary threshold (dilated by a 2x2 square) are traced; each region's minimum-area rectangle is
    scored by the mean probability inside it (`box_threshold`), grown by `unclip_ratio` (offset distance =
    area * ratio / perimeter, as DB defines it) and scaled to the picture.
    """
    import cv2

    map_h, map_w = probability.shape
    mask = (probability > s.binary_threshold).astype(np.uint8)
    if s.dilate:
        mask = cv2.dilate(mask, np.ones((2, 2), np.uint8))
    contours, _ = cv2.findContours(mask * 255, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
    boxes = []
    for contour in contours[: s.max_candidates]:
        corners, short_side = _min_area_box(contour)
        if short_side < 3:
            continue
        if _mean_inside(probability, corners) < s.box_threshold:
            continue
        grown = _unclip(corners, s.unclip_ratio)
        if grown is None:
            continue
        corners, short_side = _min_area_box(grown)
        if short_side < 5:
            continue
        corners[:, 0] = np.clip(np.round(corners[:, 0] / map_w * width), 0, width)
        corners[:, 1] = np.clip(np.round(corners[:, 1] / map_h * height), 0, height)
        boxes.append(corners.astype(np.int32))
    return boxes


def _min_area_box(points: np.ndarray) -> tuple[np.ndarray, float]:
    """The minimum-area rectangle around points as corners (top-left, top-right, bottom-right, bottom-left by x then
    y, as DB orders them) and its shorter side."""
    import cv2

    rect = cv2.minAreaRect(points)
    corners = sorted(list(cv2.boxPoints(rect)), key=lambda p: p[0])
    left = (corners[0], corners[1]) if corners[1][1] > corners[0][1] else (corners[1], corners[0])  # (top, bottom)
    right = (corners[2], corners[3]) if corners[3][1] > corners[2][1] else (corners[3], corners[2])
    return np.array([left[0], right[0], right[1], left[1]]), min(rect[1])


def _mean_inside(probability: np.ndarray, corners: np.ndarray) -> float:
    """The mean probability inside a polygon (over its bounding rectangle's pixels that the polygon covers)."""
    import cv2

    h, w = probability.shape
    xmin = int(np.clip(np.floor(corners[:, 0].min()), 0, w - 1))
    xmax = int(np.clip(np.ceil(corners[:, 0].max()), 0, w - 1))
    ymin = int(np.clip(np.floor(corners[:, 1].min()), 0, h - 1))
    ymax = int(np.clip(np.ceil(corners[:, 1].max()), 0, h - 1))
    mask = np.zeros((ymax - ymin + 1, xmax - xmin + 1), dtype=np.uint8)
    cv2.fillPoly(mask, (corners - [xmin, ymin]).reshape(1, -1, 2).astype(np.int32), 1)
    return cv2.mean(probability[ymin : ymax + 1, xmin : xmax + 1], mask)[0]


def _unclip(corners: np.ndarray, ratio: float) -> np.ndarray | None:
    """The polygon grown by DB's offset distance (area * ratio / perimeter) with rounded joins (pyclipper)."""
    import pyclipper
    from shapely.geometry import Polygon

    polygon = Polygon(corners)
    if polygon.length == 0:
        return None
    offset = pyclipper.PyclipperOffset()
    offset.AddPath(corners, pyclipper.JT_ROUND, pyclipper.ET_CLOSEDPOLYGON)
    grown = offset.Execute(polygon.area * ratio / polygon.length)
    if not grown:
        return None
    return np.array(grown).reshape((-1, 1, 2))


def clockwise(points: np.ndarray) -> np.ndarray:
    """Four corners as top-left, top-right, bottom-right, bottom-left: the two leftmost are the left side (the upper
    one first), the two rightmost the right side."""
    by_x = points[np.argsort(points[:, 0]), :]
    left, right = by_x[:2], by_x[2:]
    top_left, bottom_left = left[np.argsort(left[:, 1])]
    top_right, bottom_right = right[np.argsort(right[:, 1])]
    return np.array([top_left, top_right, bottom_right, bottom_left], dtype=np.float32)


# CTC decoding -------------------------------------------------------------------------------------------------------


def ctc_greedy(probabilities: np.ndarray, characters: list[str], restore_spaces: bool = True) -> tuple[str, float]:
    """Greedy CTC decoding of one line: the most probable class at each time step, repeats merged, blanks (class 0)
    dropped. Returns the text and the mean probability of its characters (0 for no characters).

    With `restore_spaces`, a space is put back between two characters when, at some time step between them, the space
    class (the last one) has more than `SPACE_PROBABILITY` and more than `SPACE_SHARE` of the probability the blank
    left: the recognizer, trained mostly on Chinese, often leaves the spaces between English words out, but still
    gives them that weight.
    """
    best = probabilities.argmax(axis=1)
    keep = np.ones(len(best), dtype=bool)
    keep[1:] = best[1:] != best[:-1]
    keep &= best != 0
    steps = np.flatnonzero(keep)
    if len(steps) == 0:
        return "", 0.0
    chars = [characters[i] for i in best[steps]]
    confidence = float(probabilities[steps, best[steps]].mean())
    if restore_spaces:
        space = len(characters) - 1
        # At each step, the space's probability and its share of what is not blank.
        share = probabilities[:, space] / np.maximum(1.0 - probabilities[:, 0], 1e-9)
        likely = (probabilities[:, space] > SPACE_PROBABILITY) & (share > SPACE_SHARE)
        out = [chars[0]]
        for (start, end), prev, char in zip(zip(steps, steps[1:]), chars, chars[1:]):
            if prev not in NO_SPACE_AFTER and char not in NO_SPACE_BEFORE and likely[start + 1 : end].any():
                out.append(" ")
            out.append(char)
        chars = out
    return "".join(chars), confidence


# Reading order ------------------------------------------------------------------------------------------------------

# A vertical gap at least this many text heights wide, with text on both sides, separates columns.
GUTTER = 1.5


def reading_order(boxes: list[np.ndarray], quarter_turns: list[int] | None = None) -> list[list[int]]:
    """Rows of box indices in reading order: columns left to right, rows top to bottom, a row's boxes left to right.

    The boxes are first turned as the text is: by the quarter turns most lines needed to be read upright (a page
    upside down or on its side), then level by their median angle. Then a recursive XY-cut, one cut at a time at the
    widest gap: a vertical gap through the boxes at least `GUTTER` text heights wide (and wider than any gap between
    rows) splits columns, read left to right; else a horizontal gap splits rows, read top to bottom; boxes with
    neither overlap vertically, and form one row read left to right.

    Args:
        boxes: 4x2 corners per box (clockwise from the top left, in the picture).
        quarter_turns: Per box, the quarter turns counter-clockwise (0-3) its crop needed to be read upright.
    """
    if not boxes:
        return []
    corners = np.stack([np.asarray(b, dtype=np.float64) for b in boxes])
    turns = list(quarter_turns or [0] * len(boxes))
    majority = max(set(turns), key=turns.count)
    upright = _rotated(corners, 90.0 * majority)
    angle = float(np.median([_long_edge_angle(b) for b in upright]))
    level = _rotated(upright, angle)  # a top edge going down to the right is lifted
    extents = np.stack([level[:, :, 0].min(1), level[:, :, 1].min(1), level[:, :, 0].max(1), level[:, :, 1].max(1)], 1)
    text_height = float(np.median(np.minimum(extents[:, 3] - extents[:, 1], extents[:, 2] - extents[:, 0])))
    return _xy_cut(list(range(len(boxes))), extents, max(text_height, 1.0))


def quarter_turns(box: np.ndarray, upside_down: bool) -> int:
    """The quarter turns counter-clockwise (0-3) that make a box's text upright: a box 1.5 times taller than wide was
    read turned a quarter counter-clockwise (`crop_line`), and an upside-down crop turned over."""
    width = max(np.linalg.norm(box[0] - box[1]), np.linalg.norm(box[2] - box[3]))
    height = max(np.linalg.norm(box[0] - box[3]), np.linalg.norm(box[1] - box[2]))
    return ((1 if height / max(width, 1e-6) >= 1.5 else 0) + (2 if upside_down else 0)) % 4


def _long_edge_angle(box: np.ndarray) -> float:
    """The angle of a box's longer edge, in degrees within [-45, 45) (y grows downwards)."""
    edges = [box[1] - box[0], box[2] - box[1]]
    dx, dy = max(edges, key=lambda e: float(np.hypot(*e)))
    angle = math.degrees(math.atan2(dy, dx)) if dx or dy else 0.0
    return (angle + 45.0) % 90.0 - 45.0


def _rotated(corners: np.ndarray, degrees: float) -> np.ndarray:
    """Points turned by `degrees` counter-clockwise as seen on screen (y grows downwards)."""
    theta = math.radians(degrees)
    rotation = np.array([[math.cos(theta), math.sin(theta)], [-math.sin(theta), math.cos(theta)]])
    return corners @ rotation.T


def _gaps(starts: np.ndarray, ends: np.ndarray) -> list[tuple[float, float]]:
    """The (start, end) of every stretch that no [start, end] interval covers, between the first and the last."""
    order = np.argsort(starts)
    gaps, reach = [], ends[order[0]]
    for i in order[1:]:
        if starts[i] > reach:
            gaps.append((reach, starts[i]))
        reach = max(reach, ends[i])
    return gaps


def _xy_cut(items: list[int], extents: np.ndarray, text_height: float) -> list[list[int]]:
    if len(items) == 1:
        return [items]
    e = extents[items]
    # Rows may touch: a box's top and bottom quarter are let overlap the next row's.
    shrink = (e[:, 3] - e[:, 1]) * 0.25
    row_gaps = _gaps(e[:, 1] + shrink, e[:, 3] - shrink)
    column_gaps = _gaps(e[:, 0], e[:, 2])
    widest_row_gap = max(row_gaps, key=lambda g: g[1] - g[0], default=None)
    widest_column_gap = max(column_gaps, key=lambda g: g[1] - g[0], default=None)
    row_width = widest_row_gap[1] - widest_row_gap[0] if widest_row_gap else 0.0
    if widest_column_gap and widest_column_gap[1] - widest_column_gap[0] >= max(GUTTER * text_height, row_width):
        cut, centers = sum(widest_column_gap) / 2, (e[:, 0] + e[:, 2]) / 2
    elif widest_row_gap:
        cut, centers = sum(widest_row_gap) / 2, (e[:, 1] + e[:, 3]) / 2
    else:
        return [sorted(items, key=lambda i: extents[i, 0])]
    parts = _split(items, centers, [cut])
    return [row for part in parts for row in _xy_cut(part, extents, text_height)]


def _split(items: list[int], centers: np.ndarray, cuts: list[float]) -> list[list[int]]:
    parts: list[list[int]] = [[] for _ in range(len(cuts) + 1)]
    for item, center in zip(items, centers):
        parts[int(np.searchsorted(cuts, center))].append(item)
    return [p for p in parts if p]


# Measuring ----------------------------------------------------------------------------------------------------------


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance between two strings (insertions, deletions, substitutions)."""
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def character_error_rate(reference: str, hypothesis: str) -> float:
    """Edit distance over the reference's length (whitespace runs counted as one space); 0 for two empty texts."""
    reference, hypothesis = " ".join(reference.split()), " ".join(hypothesis.split())
    if not reference:
        return 0.0 if not hypothesis else 1.0
    return edit_distance(reference, hypothesis) / len(reference)
