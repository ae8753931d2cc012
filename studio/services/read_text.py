"""Reading text: a photo or camera frame -> its text lines in reading order, with boxes, phrased for listeners; for the
live camera, only the rows of text that were not said a moment ago."""

from __future__ import annotations

from collections.abc import Sequence

from studio.errors import StudioError
from studio.progress import Progress, no_progress
from studio.services.base import Runtime, Service, ran_on

TASK = "read-text"
# Live reading remembers this many rows of text said, so a sign in view is said once, not every second.
REMEMBERED_ROWS = 30
# Two readings of a row this close (character error rate) are the same row: the camera's noise changes a
# character or two between frames.
SAME_LINE_CER = 0.25


class ReadTextService(Service):
    """Reads the text in pictures: the whole job behind the Read text tab and `studio predict read-text`."""

    TASK_CLASS = "studio.tasks.read_text:ReadTextTask"

    def __call__(
        self,
        image,
        *,
        min_confidence: float | None = None,
        restore_spaces: bool = True,
        runtime: Runtime = Runtime(),
        channel_order: str = "RGB",
        progress: Progress = no_progress,
    ) -> dict:
        """Reads one picture.

        Args:
            image: Path, bytes, PIL image or array (a camera frame).
            min_confidence: Lines read with a lower confidence (mean character probability) are left out; None
                for the model's own 0.5.
            restore_spaces: Put back spaces the recognizer left out between words.
            runtime: Which model, and on what (PP-OCR runs with ONNX Runtime only).
            channel_order: "RGB", or "BGR" for OpenCV frames.
            progress: Receives fractions and sentences while the model loads.

        Returns:
            {"task", "model", "revision", "backend", "provider", "runtime", "text" (phrased for listeners),
            "model_text" (the lines as read: a row's lines joined by spaces, rows by new lines), "confidence",
            "certainty", "lines": [{"text", "confidence", "box", "upside_down"}] in reading order, "rows",
            "dropped_lines", "width", "height", "latency_ms", "detect_ms", "classify_ms", "recognize_ms",
            "settings", "notices"}.

        Raises:
            StudioError: A bad picture or setting (checked before the model loads), or the model cannot be had.
        """
        from studio.media.image import load_image

        picture = load_image(image, channel_order)
        min_confidence = checked_min_confidence(min_confidence)
        task = self.task(runtime, progress)
        result = task(picture, min_confidence=min_confidence, restore_spaces=restore_spaces)
        settings = task.settings
        return {
            "task": TASK,
            **ran_on(task),
            **result.as_dict(),
            "settings": {
                "min_confidence": settings.min_confidence if min_confidence is None else min_confidence,
                "restore_spaces": bool(restore_spaces),
                "detect_min_side": settings.detect_min_side,
                "box_threshold": settings.box_threshold,
                "unclip_ratio": settings.unclip_ratio,
                "flip_threshold": settings.flip_threshold,
            },
            "notices": list(task.graphs.notices),
        }

    def read_if_new(
        self, frame, *, said: Sequence[str] = (), again: bool = False, runtime: Runtime = Runtime(), **options
    ) -> dict:
        """Live reading: reads a camera frame, and says only the rows of text not said a moment ago.

        Args:
            frame: The camera frame.
            said: The rows said lately (the previous call's "said"), oldest first.
            again: Say everything in view, new or not ("Read again").
            runtime: Which model, and on what.
            **options: `__call__`'s min_confidence, restore_spaces and channel_order.

        Returns:
            `__call__`'s dict, with "new" (whether there is anything to say), "new_lines" (indices into "lines" of
            the new rows), "announcement" (what to say: the new rows phrased for listeners, "" when nothing is new)
            and "said" (the rows said lately, for the next call).
        """
        from studio.tasks.read_text import phrase

        result = self(frame, runtime=runtime, **options)
        lines = result["lines"]
        rows = [" ".join(lines[i]["text"] for i in row) for row in result["rows"]]
        memory, fresh = list(said), []
        for row, text in zip(result["rows"], rows):
            normal = _normal(text)
            same = [before for before in memory if _same(before, normal)]
            if again or not same:
                fresh.append(row)
            # Rows in view stay remembered (moved to the newest end), so a sign in view is never said twice.
            memory = [before for before in memory if before not in same] + [normal]
        new_lines = [i for row in fresh for i in row]
        weights = [max(len(lines[i]["text"]), 1) for i in new_lines]
        confidence = sum(w * lines[i]["confidence"] for w, i in zip(weights, new_lines)) / max(sum(weights), 1)
        announcement = phrase([" ".join(lines[i]["text"] for i in row) for row in fresh], confidence)[0]
        if not fresh:
            announcement = result["text"] if again else ""  # "No text found." when asked, else silence
        return {
            **result,
            "new": bool(announcement),
            "new_lines": new_lines,
            "announcement": announcement,
            "said": memory[-REMEMBERED_ROWS:],
        }


def checked_min_confidence(value: float | None) -> float | None:
    """The minimum line confidence, checked (None: the model's own).

    Raises:
        StudioError: Outside 0 to 1.
    """
    if value is None:
        return None
    value = float(value)
    if not 0.0 <= value <= 1.0:
        raise StudioError(f"The minimum confidence must be between 0 and 1, not {value:g}.")
    return value


def _normal(text: str) -> str:
    """A line as compared with lines said before: lower case, letters and digits, single spaces."""
    return " ".join("".join(c if c.isalnum() else " " for c in text.lower()).split())


def _same(before: str, normal: str) -> bool:
    from studio.tasks.read_text import character_error_rate

    return character_error_rate(before, normal) <= SAME_LINE_CER
