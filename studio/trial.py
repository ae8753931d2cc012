"""The trial log: what an accessibility trial's participant was shown and told, and how they rated it.

One folder per trial log. `trial-log.jsonl` is append-only JSON Lines, one record per line, each written with a
single `write` and `fsync`ed before the call returns, so a crash or a power cut loses at most the line being written
(a cut-off last line is skipped when the log is read, and the next record starts on a fresh line). Records:

- {"kind": "output", "id", "time", "participant", "tab", "model", "revision", "runtime", "backend", "settings",
  "confidence", "certainty", "text" (as shown and said), "model_text" (as the model gave it), "latency_ms",
  "delivery" ("spoken", "shown", or "skipped-unchanged": produced but not said, as it repeated what was just said),
  "picture" (a file in pictures/ when "Keep the pictures" is on, else null)}
- {"kind": "rating", "output_id", "time", "participant", "rating" (1, 2, 3), "label" ("wrong", "partly", "right")}:
  appended as its own line; the latest rating of an output counts.

Nothing personal is kept unless asked: a participant code instead of a name, no pictures or recordings by default.
`export` writes outputs.csv and outputs.jsonl (each output with its rating) atomically; `summary` counts outputs per
tab, mean latency, ratings, and ratings against the model's confidence (is "Probably ..." said when it should be?).
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
import re
import threading
import uuid
from pathlib import Path

from studio.errors import StudioError

LOG = "trial-log.jsonl"
PICTURES = "pictures"
RATINGS = {1: "wrong", 2: "partly", 3: "right"}
DELIVERIES = ("spoken", "shown", "skipped-unchanged")
NO_PARTICIPANT = "not-set"
_CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,31}")
# Confidence bins of the calibration summary: ratings of outputs the model was this sure of.
CONFIDENCE_BINS = (0.0, 0.2, 0.4, 0.6, 0.8, 0.9, 1.0)
CSV_COLUMNS = (
    "id", "time", "participant", "tab", "model", "revision", "runtime", "backend", "delivery", "text", "model_text",
    "confidence", "certainty", "latency_ms", "settings", "picture", "rating", "rating_label", "rated_at",
)  # fmt: skip


class TrialError(StudioError):
    """A trial log cannot be written, read or exported as asked."""


def check_participant(code: str | None) -> str:
    """A participant code: letters and digits, with - or _, at most 32 characters ("P07").

    Raises:
        TrialError: Not such a code (a name with a space, an empty code).
    """
    code = (code or "").strip()
    if not _CODE.fullmatch(code):
        raise TrialError(
            "A participant code is 1 to 32 letters or digits, with - or _ between them (for example P07): "
            "a code, never a name."
        )
    return code


def _joined(result: dict, *keys: str) -> str | None:
    """Two models' names as one ("sound: X · picture: Y"), for results of two models (Sound & scene)."""
    names = [f"{key.split('_')[0]}: {result[key]}" for key in keys if result.get(key)]
    return " · ".join(names) or None


def _runtime_label(runtime) -> str | None:
    """The runtime badge's text of a result: its "label", or each side's for a result of two models."""
    if not isinstance(runtime, dict):
        return None if runtime is None else str(runtime)
    if "label" in runtime:
        return runtime["label"]
    return " · ".join(f"{side}: {r['label']}" for side, r in runtime.items() if isinstance(r, dict) and "label" in r)


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")


class TrialLog:
    """Appends a trial's outputs and ratings to `<folder>/trial-log.jsonl`.

    Args:
        folder: The trial log's folder (created if needed).
        participant: The participant's code (`check_participant`).
        keep_pictures: Keep each output's picture in `<folder>/pictures/` (off: no picture is written anywhere).
    """

    def __init__(self, folder: Path, participant: str = NO_PARTICIPANT, keep_pictures: bool = False) -> None:
        self.folder = Path(folder).expanduser().resolve()
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise TrialError(f"The trial log folder {self.folder} cannot be made ({exc.strerror}).") from exc
        self.path = self.folder / LOG
        self.participant = participant if participant == NO_PARTICIPANT else check_participant(participant)
        self.keep_pictures = bool(keep_pictures)
        self.last_output: dict | None = None
        self._lock = threading.Lock()
        self._start_on_a_fresh_line()

    def _start_on_a_fresh_line(self) -> None:
        """After a crash mid-line, the next record must not be glued to the cut-off one."""
        if self.path.is_file() and self.path.stat().st_size:
            with open(self.path, "rb") as fh:
                fh.seek(-1, os.SEEK_END)
                if fh.read(1) != b"\n":
                    self._write(b"\n")

    def _write(self, data: bytes) -> None:
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)

    def append(self, record: dict) -> None:
        """Appends one record as one line, on disk before this returns."""
        line = json.dumps(record, ensure_ascii=False, default=str) + "\n"
        with self._lock:
            try:
                self._write(line.encode("utf-8"))
            except OSError as exc:
                raise TrialError(f"The trial log {self.path} cannot be written ({exc.strerror}).") from exc

    def output(
        self,
        *,
        tab: str,
        result: dict,
        text: str,
        delivery: str,
        settings: dict | None = None,
        picture=None,
        confidence: float | None = None,
    ) -> str:
        """Logs one output (a caption, an answer, read text, a sound description) as shown or said.

        Args:
            tab: The tab it came from ("Caption").
            result: The service's result (model, revision, runtime, confidence, certainty, latency_ms, settings).
            text: What was shown and said, as phrased.
            delivery: "spoken", "shown" or "skipped-unchanged".
            settings: The tab's settings beside the result's own (speech rate, verbosity, thresholds).
            picture: The picture it was about (a path, PIL image or RGB array), kept only with `keep_pictures`.
            confidence: The model's confidence, where the result has none of its own (an answer's score).

        Returns:
            The output's id, for its rating.
        """
        if delivery not in DELIVERIES:
            raise ValueError(f"delivery must be one of {DELIVERIES}")
        output_id = uuid.uuid4().hex[:12]
        record = {
            "kind": "output",
            "id": output_id,
            "time": _now(),
            "participant": self.participant,
            "tab": tab,
            "model": result.get("model") or _joined(result, "sound_model", "image_model"),
            "revision": result.get("revision"),
            "runtime": _runtime_label(result.get("runtime")),
            "backend": result.get("backend"),
            "settings": {**(result.get("settings") or {}), **(settings or {})},
            "confidence": result.get("confidence", confidence),
            "certainty": result.get("certainty"),
            "text": text,
            "model_text": result.get("model_text", result.get("model_caption")),
            "latency_ms": result.get("latency_ms"),
            "delivery": delivery,
            "picture": self._kept_picture(output_id, picture),
        }
        self.append(record)
        self.last_output = record
        return output_id

    def _kept_picture(self, output_id: str, picture) -> str | None:
        if not self.keep_pictures or picture is None:
            return None
        from studio.atomic import replaced_on_success
        from studio.media.image import load_image

        (self.folder / PICTURES).mkdir(exist_ok=True)
        relative = f"{PICTURES}/{output_id}.jpg"
        with replaced_on_success(self.folder / relative) as tmp:
            load_image(picture).save(tmp, format="JPEG", quality=90)
        return relative

    def rate(self, rating: int, output_id: str | None = None) -> dict:
        """Rates an output (the last one logged unless `output_id` is given): 1 wrong, 2 partly, 3 right.

        Raises:
            TrialError: No output to rate yet, or not a rating.
        """
        rating = int(rating)
        if rating not in RATINGS:
            raise TrialError("A rating is 1 (wrong), 2 (partly) or 3 (right).")
        if output_id is None:
            if self.last_output is None:
                raise TrialError("There is no output to rate yet.")
            output_id = self.last_output["id"]
        record = {
            "kind": "rating",
            "output_id": output_id,
            "time": _now(),
            "participant": self.participant,
            "rating": rating,
            "label": RATINGS[rating],
        }
        self.append(record)
        return record


# Reading, export, summary -------------------------------------------------------------------------------------------


def read_log(folder: Path) -> tuple[list[dict], int]:
    """The records of a trial log, and how many lines could not be read (a line cut off by a crash).

    Raises:
        TrialError: The folder holds no trial log.
    """
    path = Path(folder).expanduser() / LOG
    if not path.is_file():
        raise TrialError(f"There is no trial log in {Path(folder).expanduser()} (no {LOG}).")
    records, broken = [], 0
    with open(path, "rb") as fh:
        for raw in fh:
            if not raw.strip():
                continue
            try:
                record = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, ValueError):
                broken += 1
                continue
            if isinstance(record, dict) and record.get("kind") in ("output", "rating"):
                records.append(record)
            else:
                broken += 1
    return records, broken


def rated_outputs(records: list[dict]) -> list[dict]:
    """Every output with its latest rating ("rating", "rating_label", "rated_at"; None when unrated), in log order."""
    latest: dict[str, dict] = {}
    for record in records:
        if record["kind"] == "rating":
            latest[record.get("output_id")] = record
    rows = []
    for record in records:
        if record["kind"] != "output":
            continue
        rating = latest.get(record["id"])
        rows.append(
            {
                **{k: v for k, v in record.items() if k != "kind"},
                "rating": rating["rating"] if rating else None,
                "rating_label": rating["label"] if rating else None,
                "rated_at": rating["time"] if rating else None,
            }
        )
    return rows


def export(folder: Path, out: Path | None = None) -> dict:
    """Writes `outputs.csv` and `outputs.jsonl` (each output with its rating) into `out` (default: the log's folder),
    each atomically: a reader sees the old file or the new one, never half of one.

    Returns:
        {"csv", "jsonl", "outputs", "rated", "broken_lines"}.
    """
    from studio.atomic import replaced_on_success

    records, broken = read_log(folder)
    rows = rated_outputs(records)
    out = Path(out).expanduser().resolve() if out else Path(folder).expanduser().resolve()
    try:
        out.mkdir(parents=True, exist_ok=True)
        with replaced_on_success(out / "outputs.jsonl", mode=0o644) as tmp:
            with open(tmp, "w", encoding="utf-8") as fh:
                for row in rows:
                    fh.write(json.dumps(row, ensure_ascii=False) + "\n")
        with replaced_on_success(out / "outputs.csv", mode=0o644) as tmp:
            with open(tmp, "w", encoding="utf-8", newline="") as fh:
                writer = csv.DictWriter(fh, fieldnames=CSV_COLUMNS, extrasaction="ignore")
                writer.writeheader()
                for row in rows:
                    writer.writerow({**row, "settings": json.dumps(row.get("settings") or {}, ensure_ascii=False)})
    except OSError as exc:
        raise TrialError(f"The export cannot be written to {out} ({exc.strerror}).") from exc
    return {
        "csv": str(out / "outputs.csv"),
        "jsonl": str(out / "outputs.jsonl"),
        "outputs": len(rows),
        "rated": sum(row["rating"] is not None for row in rows),
        "broken_lines": broken,
    }


def _mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 3) if values else None


def _rating_counts(rows: list[dict]) -> dict:
    counts = {label: 0 for label in RATINGS.values()}
    for row in rows:
        if row["rating_label"]:
            counts[row["rating_label"]] += 1
    return {**counts, "unrated": sum(row["rating"] is None for row in rows)}


def summary(folder: Path) -> dict:
    """What a trial log holds: outputs per tab (and how they were delivered), mean latency, rating counts, and mean
    rating per band of the model's confidence.

    Returns:
        {"outputs", "participants", "by_tab": {tab: {"outputs", "spoken", "shown", "skipped-unchanged",
        "mean_latency_ms", "ratings"}}, "ratings", "calibration": [{"confidence", "outputs", "rated",
        "mean_rating", "ratings"}], "points": [[confidence, rating]] (rated outputs), "broken_lines"}.
    """
    records, broken = read_log(folder)
    rows = rated_outputs(records)
    by_tab = {}
    for tab in sorted({row["tab"] for row in rows}):
        mine = [row for row in rows if row["tab"] == tab]
        latencies = [float(row["latency_ms"]) for row in mine if isinstance(row.get("latency_ms"), (int, float))]
        by_tab[tab] = {
            "outputs": len(mine),
            **{delivery: sum(row["delivery"] == delivery for row in mine) for delivery in DELIVERIES},
            "mean_latency_ms": _mean(latencies),
            "ratings": _rating_counts(mine),
        }
    calibration = []
    edges = CONFIDENCE_BINS
    for low, high in zip(edges, edges[1:]):
        inside = [
            row
            for row in rows
            if isinstance(row.get("confidence"), (int, float))
            and (low <= row["confidence"] < high or (high == edges[-1] and row["confidence"] == high))
        ]
        rated = [row["rating"] for row in inside if row["rating"] is not None]
        calibration.append(
            {
                "confidence": f"{low:.1f}–{high:.1f}",
                "outputs": len(inside),
                "rated": len(rated),
                "mean_rating": _mean([float(r) for r in rated]),
                "ratings": _rating_counts(inside),
            }
        )
    points = [
        [round(float(row["confidence"]), 4), row["rating"]]
        for row in rows
        if row["rating"] is not None and isinstance(row.get("confidence"), (int, float))
    ]
    return {
        "outputs": len(rows),
        "participants": sorted({row["participant"] for row in rows}),
        "by_tab": by_tab,
        "ratings": _rating_counts(rows),
        "calibration": calibration,
        "points": points,
        "broken_lines": broken,
    }
