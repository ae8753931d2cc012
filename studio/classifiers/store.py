"""Custom classifiers on disk: their classes and examples, and their trained versions.

Layout under `<models-dir>/classifiers/<folder>/` (the folder name is made once from the name; names and class names
live only inside JSON, never in paths, so any characters are safe):

    classifier.json     name, the zero-shot model it builds on, classes (id + name), examples (hash -> class id)
    examples/<sha256>.png
    v1/ v2/ ...         one saved version each: head.json, head.npz, classifier.onnx (image encoder + head),
                        checksums.json (sha256 of every other file in the version)

Every write goes to a temporary file or folder beside its destination and is renamed into place, so a crash or a
cancel never leaves a half-written classifier; a version whose files no longer match its checksums is refused and the
previous version is used instead.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import re
import shutil
import tempfile
import threading
import uuid
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from studio.atomic import replaced_on_success, temporary_prefix, write_json_atomic
from studio.errors import ClassifierError, CorruptClassifierError
from studio.export.manifest import sha256_file
from studio.media.image import IMAGE_SUFFIXES
from studio.media.text import typed_items

FORMAT_VERSION = 1
META = "classifier.json"
CHECKSUMS = "checksums.json"
HEAD_JSON = "head.json"
HEAD_ARRAYS = "head.npz"
ONNX_FILE = "classifier.onnx"
VERSION_FILES = (HEAD_JSON, HEAD_ARRAYS, ONNX_FILE)
MAX_NAME_CHARS = 200
MAX_CLASSES = 1000
MAX_EXAMPLES = 5000  # per classifier: embedding 5,000 photos takes a few minutes on 2 CPU cores with a base CLIP
# Examples are kept no larger than this on their shorter side: far above any CLIP input (224-336), much smaller on disk.
KEEP_SHORT_SIDE = 512
MAX_ZIP_BYTES = 4_000_000_000  # uncompressed; refuses zip bombs
_VERSION_DIR = re.compile(r"^v([1-9][0-9]{0,5})$")
_ZIP_MEMBER = re.compile(r"^(classifier\.json|examples/[0-9a-f]{64}\.png|v[1-9][0-9]{0,5}/[a-z_.]+)$")


def clean_name(name: str | None, what: str = "The classifier's name") -> str:
    """A name with its white space tidied.

    Raises:
        ClassifierError: Empty, too long, or holding control characters.
    """
    text = " ".join(str(name or "").split())
    if not text:
        raise ClassifierError(f"{what} is empty; type a name.")
    if len(text) > MAX_NAME_CHARS:
        raise ClassifierError(f"{what} is {len(text)} characters long; keep it to {MAX_NAME_CHARS} or fewer.")
    if any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise ClassifierError(f"{what} holds invisible control characters; type it again.")
    return text


def parse_classes(classes: str | list[str] | None) -> list[str]:
    """Class names from "cat, dog" (commas or new lines) or a list.

    Raises:
        ClassifierError: Fewer than two classes, a duplicate, or a name that is too long.
    """
    out, seen = [], set()
    for part in typed_items(classes):
        name = clean_name(part, "A class name")
        if name.casefold() in seen:
            raise ClassifierError(f"The class “{name}” is listed twice; give each class once.")
        seen.add(name.casefold())
        out.append(name)
    if len(out) < 2:
        one = f" (only “{out[0]}” so far)" if out else ""
        raise ClassifierError(
            f"A classifier needs at least two classes to tell apart{one}; add another class, for example "
            "“something else”."
        )
    if len(out) > MAX_CLASSES:
        raise ClassifierError(f"That is {len(out)} classes; a classifier can have at most {MAX_CLASSES}.")
    return out


@dataclass
class AddReport:
    """What adding examples did.

    Attributes:
        added: How many new examples were stored.
        notices: Sentences about skipped or adjusted pictures (duplicates, unreadable files, classes created).
    """

    added: int = 0
    notices: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"added": self.added, "notices": self.notices}


@dataclass
class SavedVersion:
    """One saved, verified version of a classifier.

    Attributes:
        name: The classifier's name.
        version: Its version number.
        directory: The version folder.
        head: The contents of head.json (classes, method, blend, accuracies, model...).
        arrays: The arrays of head.npz (weight, bias, text_embeds).
        notices: Sentences about versions passed over because they were damaged.
    """

    name: str
    version: int
    directory: Path
    head: dict
    arrays: dict[str, np.ndarray]
    notices: list[str] = field(default_factory=list)

    @property
    def classes(self) -> list[str]:
        return list(self.head["classes"])

    @property
    def onnx_path(self) -> Path | None:
        path = self.directory / ONNX_FILE
        return path if path.is_file() else None


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def _folder_for(name: str) -> str:
    ascii_part = re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-").lower()[:40] or "classifier"
    return f"{ascii_part}-{uuid.uuid4().hex[:8]}"


def image_record(image) -> tuple[str, bytes, tuple[int, int], tuple[int, int]]:
    """Decodes a picture into what the store keeps: (sha256 of its pixels, PNG bytes, kept size, original size).

    The hash is taken over the decoded pixels, so the same picture saved twice (or as JPEG and PNG) is one example.

    Raises:
        BadImageError: The picture cannot be read.
    """
    from PIL import Image

    from studio.media.image import load_image

    im = load_image(image)
    original = im.size
    short = min(im.size)
    if short > KEEP_SHORT_SIDE:
        scale = KEEP_SHORT_SIDE / short
        im = im.resize((max(1, round(im.width * scale)), max(1, round(im.height * scale))), Image.Resampling.BICUBIC)
    pixels = np.asarray(im, dtype=np.uint8)
    digest = hashlib.sha256(f"{pixels.shape}".encode() + pixels.tobytes()).hexdigest()
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return digest, buf.getvalue(), im.size, original


class ClassifierStore:
    """The custom classifiers of one models directory.

    Args:
        models_dir: Root of exports and local copies; classifiers live in its `classifiers/` folder.
    """

    _locks: dict[Path, threading.RLock] = {}

    def __init__(self, models_dir: Path) -> None:
        self.root = Path(models_dir) / "classifiers"
        key = self.root.resolve()
        self._lock = ClassifierStore._locks.setdefault(key, threading.RLock())

    # Finding ------------------------------------------------------------------------------------------------------

    def _folders(self) -> list[Path]:
        if not self.root.is_dir():
            return []
        return sorted(p for p in self.root.iterdir() if p.is_dir() and not p.name.startswith("."))

    def _read_meta(self, folder: Path) -> dict | None:
        try:
            meta = json.loads((folder / META).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return meta if isinstance(meta, dict) and meta.get("format") == FORMAT_VERSION else None

    def names(self) -> list[str]:
        """The names of every classifier, in alphabetical order."""
        return sorted((m["name"] for f in self._folders() if (m := self._read_meta(f))), key=str.casefold)

    def folder(self, name: str) -> Path:
        """The folder of the classifier with this name.

        Raises:
            ClassifierError: There is none.
        """
        wanted = " ".join(str(name or "").split()).casefold()
        for f in self._folders():
            meta = self._read_meta(f)
            if meta and meta["name"].casefold() == wanted:
                return f
        if not wanted:
            raise ClassifierError("Choose a classifier first (or create one).")
        known = self.names()
        hint = f" The saved ones are: {', '.join(known)}." if known else " There are none yet; create one first."
        raise ClassifierError(f"There is no classifier named “{' '.join(str(name).split())}”.{hint}")

    def meta(self, name: str) -> dict:
        """classifier.json of a classifier (name, model, classes, examples)."""
        return self._read_meta(self.folder(name))

    def _write_meta(self, folder: Path, meta: dict) -> None:
        meta["updated"] = _now()
        write_json_atomic(folder / META, meta)

    # Creating, renaming, deleting --------------------------------------------------------------------------------

    def create(self, name: str, classes: str | list[str], model: str | None) -> dict:
        """Makes a new classifier with classes and no examples yet.

        Args:
            name: Any text up to 200 characters.
            classes: "cat, dog" or a list (at least two).
            model: The zero-shot model (hub id or folder) whose image encoder it builds on; None for the default.

        Returns:
            Its classifier.json.

        Raises:
            ClassifierError: Bad name or classes, or a classifier of that name exists.
        """
        name = clean_name(name)
        class_names = parse_classes(classes)
        with self._lock:
            if name.casefold() in {n.casefold() for n in self.names()}:
                raise ClassifierError(f"A classifier named “{name}” already exists; choose another name.")
            self.root.mkdir(parents=True, exist_ok=True)
            folder = self.root / _folder_for(name)
            tmp = Path(tempfile.mkdtemp(dir=self.root, prefix=temporary_prefix(folder.name, "creating")))
            meta = {
                "format": FORMAT_VERSION,
                "name": name,
                "model": model,
                "created": _now(),
                "classes": [{"id": f"c{i}", "name": c} for i, c in enumerate(class_names)],
                "next_class": len(class_names),
                "examples": {},
            }
            try:
                (tmp / "examples").mkdir()
                self._write_meta(tmp, meta)
                tmp.rename(folder)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
            return meta

    def add_classes(self, name: str, classes: list[str]) -> list[str]:
        """Adds classes that are not there yet; returns the names added."""
        with self._lock:
            folder = self.folder(name)
            meta = self._read_meta(folder)
            added = self._add_classes(meta, classes)
            if added:
                self._write_meta(folder, meta)
            return added

    def _add_classes(self, meta: dict, classes: list[str]) -> list[str]:
        known = {c["name"].casefold() for c in meta["classes"]}
        added = []
        for raw in classes:
            cname = clean_name(raw, "A class name")
            if cname.casefold() in known:
                continue
            if len(meta["classes"]) >= MAX_CLASSES:
                raise ClassifierError(f"A classifier can have at most {MAX_CLASSES} classes.")
            meta["classes"].append({"id": f"c{meta['next_class']}", "name": cname})
            meta["next_class"] += 1
            known.add(cname.casefold())
            added.append(cname)
        return added

    def rename(self, name: str, new_name: str) -> str:
        """Gives a classifier a new name (its folder stays; names live in JSON only)."""
        new_name = clean_name(new_name, "The new name")
        with self._lock:
            folder = self.folder(name)
            meta = self._read_meta(folder)
            clash = [n for n in self.names() if n.casefold() == new_name.casefold()]
            if clash and new_name.casefold() != meta["name"].casefold():
                raise ClassifierError(f"A classifier named “{new_name}” already exists; choose another name.")
            meta["name"] = new_name
            self._write_meta(folder, meta)
            return new_name

    def delete(self, name: str) -> None:
        """Deletes a classifier with its examples and versions (moved aside first, so it vanishes at once)."""
        with self._lock:
            folder = self.folder(name)
            trash = folder.with_name(f".{folder.name}.deleting-{uuid.uuid4().hex[:6]}")
            folder.rename(trash)
        shutil.rmtree(trash, ignore_errors=True)

    # Examples ----------------------------------------------------------------------------------------------------

    def _class_id(self, meta: dict, class_name: str) -> str:
        wanted = " ".join(str(class_name or "").split()).casefold()
        for c in meta["classes"]:
            if c["name"].casefold() == wanted:
                return c["id"]
        names = ", ".join(f"“{c['name']}”" for c in meta["classes"])
        raise ClassifierError(f"“{class_name}” is not one of this classifier's classes ({names}).")

    def add_examples(self, name: str, class_name: str, images: list) -> AddReport:
        """Stores pictures as examples of a class; repeated pictures are stored once.

        Args:
            name: The classifier.
            class_name: One of its classes.
            images: Paths, bytes, PIL images or arrays (see `media.image.load_image`).

        Returns:
            How many were added, with sentences about the ones skipped.

        Raises:
            ClassifierError: Unknown classifier or class, or no picture could be added.
        """

        report = AddReport()
        if not images:
            raise ClassifierError("There are no pictures to add yet; take a snapshot, upload photos or pick a folder.")
        with self._lock:
            folder = self.folder(name)
            meta = self._read_meta(folder)
            cid = self._class_id(meta, class_name)
            self._add_into(folder, meta, cid, images, report)
            self._write_meta(folder, meta)
        if report.added == 0 and not report.notices:
            raise ClassifierError("None of the pictures could be added.")
        return report

    def _add_into(self, folder: Path, meta: dict, cid: str, images: list, report: AddReport) -> None:
        from studio.errors import BadImageError

        names = {c["id"]: c["name"] for c in meta["classes"]}
        duplicates = unreadable = 0
        for image in images:
            if len(meta["examples"]) >= MAX_EXAMPLES:
                report.notices.append(
                    f"A classifier holds at most {MAX_EXAMPLES:,} examples, so the remaining pictures were not added."
                )
                break
            try:
                digest, png, _, _ = image_record(image)
            except BadImageError as exc:
                unreadable += 1
                if unreadable <= 3:
                    where = f" ({Path(image).name})" if isinstance(image, (str, Path)) else ""
                    report.notices.append(f"Skipped a picture{where}: {exc}")
                continue
            owner = meta["examples"].get(digest)
            if owner == cid:
                duplicates += 1
                continue
            if owner is not None:
                report.notices.append(
                    f"A picture is already an example of “{names[owner]}”, so it was not added to “{names[cid]}” "
                    "as well (one picture can teach only one class)."
                )
                continue
            path = folder / "examples" / f"{digest}.png"
            if not path.exists():
                tmp = path.with_name(f"{temporary_prefix(path.name, 'writing')}.tmp")
                tmp.write_bytes(png)
                tmp.replace(path)
            meta["examples"][digest] = cid
            report.added += 1
        if duplicates:
            report.notices.append(
                f"{duplicates} picture{'s were' if duplicates > 1 else ' was'} already among the examples of "
                f"“{names[cid]}” and {'were' if duplicates > 1 else 'was'} kept once."
            )
        if unreadable > 3:
            report.notices.append(f"{unreadable} pictures in all could not be read and were skipped.")

    def add_folder(self, name: str, directory: Path, allowed: Callable[[Path], bool] | None = None) -> AddReport:
        """Adds a folder laid out one sub-folder per class (sub-folders that are no class yet become classes).

        Args:
            name: The classifier.
            directory: The folder.
            allowed: Which pictures may be read (a shared app's `SharingPolicy.allows`: a link inside the folder
                to a picture outside the allowed folders is skipped); None: all.

        Raises:
            ClassifierError: The folder does not exist or has no sub-folders with pictures.
        """
        directory = Path(directory)
        if not directory.is_dir():
            raise ClassifierError(f"The folder {directory} does not exist.")
        groups = {}
        for sub in sorted(p for p in directory.iterdir() if p.is_dir() and not p.name.startswith(".")):
            files = sorted(
                f
                for f in sub.rglob("*")
                if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES and (allowed is None or allowed(f))
            )
            if files:
                groups[sub.name] = files
        if not groups:
            raise ClassifierError(
                f"The folder {directory} has no sub-folders with pictures; put each class's pictures in a "
                "sub-folder named after the class (for example cat/ and dog/)."
            )
        report = AddReport()
        with self._lock:
            folder = self.folder(name)
            meta = self._read_meta(folder)
            created = self._add_classes(meta, list(groups))
            if created:
                report.notices.append("New classes from the folder's sub-folders: " + ", ".join(created) + ".")
            for class_name, files in groups.items():
                self._add_into(folder, meta, self._class_id(meta, class_name), files, report)
            self._write_meta(folder, meta)
        return report

    def remove_example(self, name: str, digest: str) -> None:
        """Removes one example (by its hash, as `examples()` lists it)."""
        with self._lock:
            folder = self.folder(name)
            meta = self._read_meta(folder)
            if digest not in meta["examples"]:
                raise ClassifierError("That example is not in this classifier (any more).")
            del meta["examples"][digest]
            self._write_meta(folder, meta)
            (folder / "examples" / f"{digest}.png").unlink(missing_ok=True)

    def examples(self, name: str) -> dict[str, list[tuple[str, Path]]]:
        """Every class's examples: {class name: [(hash, file)]}, classes in their order."""
        folder = self.folder(name)
        meta = self._read_meta(folder)
        out = {c["name"]: [] for c in meta["classes"]}
        names = {c["id"]: c["name"] for c in meta["classes"]}
        for digest, cid in meta["examples"].items():
            out[names[cid]].append((digest, folder / "examples" / f"{digest}.png"))
        return out

    # Versions ----------------------------------------------------------------------------------------------------

    def versions(self, name: str) -> list[int]:
        """The version numbers saved, oldest first (damaged ones included)."""
        folder = self.folder(name)
        return sorted(int(m.group(1)) for p in folder.iterdir() if (m := _VERSION_DIR.match(p.name)) and p.is_dir())

    def save_version(self, name: str, head: dict, arrays: dict[str, np.ndarray], write_onnx=None) -> int:
        """Saves a trained head as the next version, atomically.

        Args:
            name: The classifier.
            head: JSON-able description (classes, method, blend, accuracies, model...).
            arrays: weight (C, D), bias (C,), text_embeds (C, D).
            write_onnx: Optional callable(path) -> dict that writes the image encoder + head graph and returns facts
                about it (parity) to record in head.json.

        Returns:
            The new version number.
        """
        with self._lock:
            folder = self.folder(name)
            existing = self.versions(name)
            version = (existing[-1] if existing else 0) + 1
            final = folder / f"v{version}"
            tmp = Path(tempfile.mkdtemp(dir=folder, prefix=temporary_prefix(f"v{version}", "saving")))
        try:
            head = {**head, "version": version, "saved": _now(), "format": FORMAT_VERSION}
            np.savez(tmp / HEAD_ARRAYS, **{k: np.asarray(v, dtype=np.float32) for k, v in arrays.items()})
            if write_onnx is not None:
                head["onnx"] = write_onnx(tmp / ONNX_FILE)
            write_json_atomic(tmp / HEAD_JSON, head)
            files = [f for f in VERSION_FILES if (tmp / f).is_file()]
            write_json_atomic(tmp / CHECKSUMS, {f: sha256_file(tmp / f) for f in files})
            with self._lock:
                if final.exists():  # another save took this number meanwhile
                    raise ClassifierError("Another save of this classifier happened at the same time; save again.")
                tmp.rename(final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return version

    def _verify(self, directory: Path) -> None:
        label = directory.name
        try:
            sums = json.loads((directory / CHECKSUMS).read_text())
        except (OSError, ValueError):
            raise CorruptClassifierError(
                f"Version {label[1:]} of this classifier is damaged (its list of checksums is missing or unreadable)."
            ) from None
        for needed in (HEAD_JSON, HEAD_ARRAYS):
            if needed not in sums:
                raise CorruptClassifierError(f"Version {label[1:]} of this classifier is incomplete ({needed}).")
        for file_name, digest in sums.items():
            path = directory / file_name
            if file_name not in VERSION_FILES or not path.is_file():
                raise CorruptClassifierError(
                    f"Version {label[1:]} of this classifier is incomplete: {file_name} is missing."
                )
            if sha256_file(path) != digest:
                raise CorruptClassifierError(
                    f"Version {label[1:]} of this classifier is damaged: {file_name} has changed since it was saved "
                    "(its checksum does not match)."
                )

    def load(self, name: str, version: int | None = None) -> SavedVersion:
        """Loads a saved version after checking every file against its checksum.

        Args:
            name: The classifier.
            version: A version number; None for the newest one that is intact.

        Returns:
            The version, with notices naming newer versions that were passed over as damaged.

        Raises:
            ClassifierError: Nothing saved yet, or the version asked for is damaged or missing.
        """
        folder = self.folder(name)
        meta = self._read_meta(folder)
        versions = self.versions(name)
        if not versions:
            raise ClassifierError(f"“{meta['name']}” has not been trained and saved yet; train it, then save it.")
        if version is not None:
            if version not in versions:
                raise ClassifierError(
                    f"“{meta['name']}” has no version {version}; it has {', '.join(map(str, versions))}."
                )
            candidates = [version]
        else:
            candidates = list(reversed(versions))
        notices = []
        for v in candidates:
            directory = folder / f"v{v}"
            try:
                self._verify(directory)
            except CorruptClassifierError as exc:
                if version is not None:
                    raise CorruptClassifierError(f"{exc} Studio will not use it; use an earlier version.") from None
                notices.append(f"{exc} Studio uses an earlier version instead.")
                continue
            head = json.loads((directory / HEAD_JSON).read_text(encoding="utf-8"))
            with np.load(directory / HEAD_ARRAYS) as data:
                arrays = {k: data[k] for k in data.files}
            return SavedVersion(meta["name"], v, directory, head, arrays, notices)
        raise CorruptClassifierError(
            " ".join(notices[:1])
            + f" No intact version of “{meta['name']}” is left; train it and save it again (its examples are kept)."
        )

    def summary(self, name: str) -> dict:
        """One row for lists: name, model, classes with example counts, versions, latest accuracies."""
        folder = self.folder(name)
        meta = self._read_meta(folder)
        counts = {c["id"]: 0 for c in meta["classes"]}
        for cid in meta["examples"].values():
            counts[cid] += 1
        row = {
            "name": meta["name"],
            "model": meta.get("model"),
            "classes": [{"name": c["name"], "examples": counts[c["id"]]} for c in meta["classes"]],
            "examples": len(meta["examples"]),
            "versions": self.versions(name),
            "folder": str(folder),
        }
        # Lists read the newest version's head.json without hashing its files (a real model's graph is hundreds of
        # MB); every use of a version goes through `load`, which checks them.
        row["latest"] = None
        for v in reversed(row["versions"]):
            try:
                head = json.loads((folder / f"v{v}" / HEAD_JSON).read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            row["latest"] = {k: head.get(k) for k in ("version", "method", "blend", "accuracy")}
            break
        return row

    def list(self) -> list[dict]:
        """A summary of every classifier."""
        return [self.summary(n) for n in self.names()]

    # Zip export and import ---------------------------------------------------------------------------------------

    def export_zip(self, name: str, out: Path) -> Path:
        """Writes the classifier (classes, examples and every intact version) as one zip file, atomically."""
        folder = self.folder(name)
        out = Path(out)
        if out.is_dir():
            out = out / f"{folder.name.rsplit('-', 1)[0]}.zip"
        out.parent.mkdir(parents=True, exist_ok=True)
        # The zip is closed (complete) before the temporary file is renamed into place.
        with replaced_on_success(out) as tmp:
            with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
                zf.write(folder / META, META)
                meta = self._read_meta(folder)
                for digest in meta["examples"]:
                    zf.write(folder / "examples" / f"{digest}.png", f"examples/{digest}.png")
                for v in self.versions(name):
                    directory = folder / f"v{v}"
                    try:
                        self._verify(directory)
                    except CorruptClassifierError:
                        continue  # a damaged version is not passed on
                    for f in (CHECKSUMS, *VERSION_FILES):
                        if (directory / f).is_file():
                            zf.write(directory / f, f"v{v}/{f}")
        return out

    def import_zip(self, path: Path, new_name: str | None = None) -> str:
        """Imports a classifier zip made by `export_zip`, checking every member before anything is written.

        Returns:
            The imported classifier's name.

        Raises:
            ClassifierError: Not such a zip, a member outside the expected layout (e.g. "../"), damaged versions, or
                the name is taken.
        """
        path = Path(path)
        bad = ClassifierError(f"{path.name} is not a classifier exported by Studio, so it was not imported.")
        try:
            zf = zipfile.ZipFile(path)
        except (OSError, zipfile.BadZipFile):
            raise bad from None
        with zf:
            infos = zf.infolist()
            for info in infos:
                if info.is_dir():
                    continue
                if not _ZIP_MEMBER.match(info.filename) or ".." in info.filename:
                    raise ClassifierError(
                        f"{path.name} holds a file outside a classifier's layout ({info.filename[:80]}), so it was "
                        "not imported."
                    )
                if (info.external_attr >> 16) & 0o170000 == 0o120000:
                    raise ClassifierError(f"{path.name} holds a link ({info.filename[:80]}), so it was not imported.")
            if sum(i.file_size for i in infos) > MAX_ZIP_BYTES or META not in zf.namelist():
                raise bad
            try:
                meta = json.loads(zf.read(META).decode("utf-8"))
                clean_name(meta["name"])
                assert meta.get("format") == FORMAT_VERSION and isinstance(meta["examples"], dict)
                ids = {c["id"] for c in meta["classes"]}
                assert all(cid in ids for cid in meta["examples"].values())
            except Exception:  # noqa: BLE001 - any malformed classifier.json is the same sentence
                raise bad from None
            name = clean_name(new_name, "The new name") if new_name else meta["name"]
            meta["name"] = name
            self.root.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(dir=self.root, prefix=temporary_prefix("", "importing")))
            try:
                (tmp / "examples").mkdir()
                for info in infos:
                    if info.is_dir() or info.filename == META:
                        continue
                    target = tmp / info.filename
                    target.parent.mkdir(exist_ok=True)
                    with zf.open(info) as src, open(target, "wb") as dst:
                        shutil.copyfileobj(src, dst)
                for digest in meta["examples"]:
                    if not (tmp / "examples" / f"{digest}.png").is_file():
                        raise bad
                for directory in sorted(p for p in tmp.iterdir() if _VERSION_DIR.match(p.name)):
                    self._verify(directory)
                with self._lock:
                    if name.casefold() in {n.casefold() for n in self.names()}:
                        raise ClassifierError(
                            f"A classifier named “{name}” already exists; import it under another name."
                        )
                    self._write_meta(tmp, meta)
                    tmp.rename(self.root / _folder_for(name))
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
        return name
