"""Search indexes on disk, under `<models-dir>/indexes/<folder>/` (the folder name is made once from the index's name;
the name itself lives only in JSON):

    index.json      name, the model and its revision, what it holds (photos and videos, or sounds), the folder it
                    was built from, frame spacing for videos, the FAISS index's kind and settings, counts, dates
    items.json      one row per vector: the file (relative to the folder), its content's sha256, its kind
                    ("photo", "video" or "sound") and, for video frames and sound windows, the time in seconds
    vectors.npy     the unit-length embeddings, row i for item i (kept so an update re-uses them)
    vectors.faiss   the FAISS index of those vectors
    checksums.json  sha256 of each of the four files above

An index is written whole into a temporary folder and renamed into place (`studio.atomic`), so a crash or a Stop
never leaves a half-written one; an index whose files no longer match their checksums is refused with a sentence.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from studio.atomic import directory_replaced_on_success
from studio.errors import StudioError
from studio.export.manifest import sha256_file
from studio.search.vectors import VectorIndex

FORMAT_VERSION = 1
META = "index.json"
ITEMS = "items.json"
VECTORS = "vectors.npy"
FAISS = "vectors.faiss"
CHECKSUMS = "checksums.json"
CHECKED_FILES = (META, ITEMS, VECTORS, FAISS)
MAX_NAME_CHARS = 100
RESERVED_NAMES = ("eval",)  # `studio search eval` evaluates pairs instead of searching an index of that name


class SearchError(StudioError):
    """A search index cannot be made, found, read or searched as asked."""


class CorruptIndexError(SearchError):
    """An index's files no longer match the checksums written when it was saved."""


def clean_index_name(name: str | None) -> str:
    """An index name with its white space tidied.

    Raises:
        SearchError: Empty, too long, reserved, or holding control characters.
    """
    text = " ".join(str(name or "").split())
    if not text:
        raise SearchError("The index has no name; type a name, for example: holiday photos.")
    if len(text) > MAX_NAME_CHARS:
        raise SearchError(f"The index name is {len(text)} characters long; keep it to {MAX_NAME_CHARS} or fewer.")
    if any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise SearchError("The index name holds invisible control characters; type it again.")
    if text.casefold() in RESERVED_NAMES:
        raise SearchError(f"“{text}” is a word the search command keeps for itself; choose another name.")
    return text


def folder_for(name: str) -> str:
    """A safe folder name for an index name: its letters and digits, and a short hash of the whole name."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.casefold()).strip("-")[:40] or "index"
    return f"{slug}-{hashlib.sha256(name.encode()).hexdigest()[:8]}"


@dataclass
class SavedIndex:
    """An index as it is kept: what it is, its items, their vectors and the FAISS index over them.

    Attributes:
        meta: index.json's content.
        items: One dict per vector: {"file", "sha256", "kind", "time_s"}.
        vectors: (N, D) float32 unit rows.
        vector_index: The FAISS index (None only while building).
    """

    meta: dict
    items: list[dict]
    vectors: np.ndarray
    vector_index: VectorIndex | None = None
    notices: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.meta["name"]

    def counts(self) -> dict:
        """How many photos, videos (and their frames) and sounds (and their windows) it holds."""
        files: dict[str, set] = {"photo": set(), "video": set(), "sound": set()}
        for item in self.items:
            files[item["kind"]].add(item["file"])
        by_kind = {kind: sum(1 for i in self.items if i["kind"] == kind) for kind in files}
        return {
            "photos": len(files["photo"]),
            "videos": len(files["video"]),
            "video_frames": by_kind["video"],
            "sounds": len(files["sound"]),
            "sound_windows": by_kind["sound"],
            "vectors": len(self.items),
        }

    def info(self) -> dict:
        """Plain data about the index (what `studio index info` prints)."""
        return {
            "name": self.name,
            "model": self.meta["model"],
            "revision": self.meta.get("revision"),
            "holds": self.meta["holds"],
            "folder": self.meta["folder"],
            "frame_every_s": self.meta.get("frame_every_s"),
            "dimensions": int(self.vectors.shape[1]) if self.vectors.ndim == 2 else 0,
            "counts": self.counts(),
            "search": self.vector_index.describe() if self.vector_index else None,
            "faiss": self.vector_index.settings() if self.vector_index else None,
            "created": self.meta.get("created"),
            "updated": self.meta.get("updated"),
        }


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


class IndexStore:
    """The indexes under `<models-dir>/indexes/`.

    Args:
        models_dir: The models directory.
    """

    def __init__(self, models_dir: Path) -> None:
        self.root = Path(models_dir) / "indexes"

    def directory(self, name: str) -> Path:
        return self.root / folder_for(clean_index_name(name))

    def exists(self, name: str) -> bool:
        return (self.directory(name) / META).is_file()

    def names(self) -> list[str]:
        """The names of the indexes kept here, sorted."""
        out = []
        if self.root.is_dir():
            for folder in self.root.iterdir():
                if folder.name.startswith(".") or not (folder / META).is_file():
                    continue
                try:
                    out.append(json.loads((folder / META).read_text())["name"])
                except (OSError, ValueError, KeyError):
                    continue
        return sorted(out, key=str.casefold)

    def meta(self, name: str) -> dict:
        """index.json of an index (not verified: enough to say which model and folder it was built from).

        Raises:
            SearchError: No index of that name.
        """
        path = self.directory(name) / META
        try:
            return json.loads(path.read_text())
        except FileNotFoundError:
            raise self.missing(name) from None
        except (OSError, ValueError) as exc:
            raise CorruptIndexError(self.damaged_sentence(name)) from exc

    def missing(self, name: str) -> SearchError:
        known = self.names()
        hint = f" The indexes here: {', '.join(known)}." if known else " There is no index yet: build one first."
        return SearchError(f"There is no index called “{name}”.{hint}")

    @staticmethod
    def damaged_sentence(name: str) -> str:
        return (
            f"The index “{name}” is damaged (its files no longer match the checksums written when it was saved); "
            "build it again from its folder."
        )

    def save(self, index: SavedIndex) -> Path:
        """Writes an index whole, replacing the one of the same name only once every file is written."""
        final = self.directory(index.name)
        self.root.mkdir(parents=True, exist_ok=True)
        with directory_replaced_on_success(final, "saving") as tmp:
            (tmp / META).write_text(json.dumps({**index.meta, "format": FORMAT_VERSION}, indent=2, sort_keys=True))
            (tmp / ITEMS).write_text(json.dumps(index.items, ensure_ascii=False))
            np.save(tmp / VECTORS, np.ascontiguousarray(index.vectors, dtype=np.float32))
            index.vector_index.save(tmp / FAISS)
            sums = {name: sha256_file(tmp / name) for name in CHECKED_FILES}
            (tmp / CHECKSUMS).write_text(json.dumps(sums, indent=2, sort_keys=True))
        return final

    def load(self, name: str) -> SavedIndex:
        """Reads and verifies an index.

        Raises:
            SearchError: No index of that name.
            CorruptIndexError: Its files do not match their checksums, or cannot be read.
        """
        name = clean_index_name(name)
        folder = self.directory(name)
        if not (folder / META).is_file():
            raise self.missing(name)
        try:
            sums = json.loads((folder / CHECKSUMS).read_text())
            if any(sha256_file(folder / f) != sums.get(f) for f in CHECKED_FILES):
                raise CorruptIndexError(self.damaged_sentence(name))
            meta = json.loads((folder / META).read_text())
            items = json.loads((folder / ITEMS).read_text())
            vectors = np.load(folder / VECTORS)
            vector_index = VectorIndex.read(folder / FAISS, meta["faiss"])
        except CorruptIndexError:
            raise
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            raise CorruptIndexError(self.damaged_sentence(name)) from exc
        if len(items) != len(vectors) or vector_index.count != len(vectors):
            raise CorruptIndexError(self.damaged_sentence(name))
        return SavedIndex(meta, items, vectors, vector_index)

    def remove(self, name: str) -> None:
        """Deletes an index (its files; never the photos it was built from).

        Raises:
            SearchError: No index of that name.
        """
        folder = self.directory(name)
        if not folder.is_dir():
            raise self.missing(clean_index_name(name))
        trash = folder.with_name(f".{folder.name}.removed")
        folder.rename(trash)
        shutil.rmtree(trash, ignore_errors=True)


def new_meta(name: str, model: str, revision: str | None, holds: str, folder: Path, frame_every_s: float) -> dict:
    """index.json's content for a new index."""
    now = _now()
    return {
        "name": name,
        "model": model,
        "revision": revision,
        "holds": holds,
        "folder": str(folder),
        "frame_every_s": frame_every_s,
        "created": now,
        "updated": now,
    }


def touched(meta: dict) -> dict:
    """The meta with its `updated` time set to now."""
    return {**meta, "updated": _now()}
