"""Shared mode: what a visitor on the network may make the server do.

A presenter who starts `studio --host 0.0.0.0` lets the room open the app; then every visitor can do what the local
user can. In shared mode (on by itself when the app listens beyond this machine, `--shared` anywhere):

- every input that names a path on the server (model folders, import folders, index folders, trial-log folders) is
  resolved (`~`, `..`, symlinks, relative to the working folder) and refused with a sentence unless it lies under a
  folder the presenter allowed (`--allow-path DIR`, repeatable): `SharingPolicy.check_folder`;
- models come from the registry, or from folders under those roots, the models directory, or the folders the
  presenter named with `--model`: `SharingPolicy.check_model`;
- requests are limited (upload size, recording length, labels, waiting requests per event and per visitor): `Limits`.

Locally (`SharingPolicy()`, the default) nothing is refused here. Nothing in this module imports gradio: the same
policy guards the tabs, and any other caller (a serving layer) can hold one.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from studio.errors import StudioError


class RefusedError(StudioError):
    """A shared app refuses what a visitor asked for (a folder outside the allowed ones, a file or request too big)."""


def is_loopback(host: str) -> bool:
    """Whether an address to serve on keeps the app on this machine (127.x.x.x, ::1, localhost).

    "0.0.0.0", "::", a host name or a LAN address open it to the network.
    """
    host = (host or "").strip().strip("[]")
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Limits:
    """What one request of a shared app may ask for. Each refusal says which limit and how to stay within it.

    Attributes:
        upload_mb: Largest upload of any kind (gradio's `max_file_size`, refused before it is stored): videos and
            sound files are the big ones.
        photo_mb: Largest photo: a 25 MB JPEG is already far beyond any phone camera.
        video_seconds: Longest video per request (a 10 minute video is about 300 VideoMAE windows: minutes of CPU).
        audio_seconds: Longest sound file or recording per request.
        labels: Most labels (or classes) typed at once; each one is a text-encoder pass.
        label_chars: Longest label.
        text_chars: Longest text in any box (a question, a name); nothing a person types is longer.
        queue_per_event: Requests of one kind (one button) that may wait; beyond it the app says it is busy at once
            instead of queueing for ever.
        per_visitor: Requests of one kind that one visitor (a browser session, or a login) may have waiting or
            running; a second click while the first runs is refused, so one visitor cannot fill the queue.
    """

    upload_mb: float = 500
    photo_mb: float = 25
    video_seconds: float = 600
    audio_seconds: float = 600
    labels: int = 50
    label_chars: int = 100
    text_chars: int = 10_000
    queue_per_event: int = 8
    per_visitor: int = 1


BUSY = "Studio is busy with other visitors' requests; try again in a moment."
ALREADY_RUNNING = "You already have this running; wait for it to finish, then try again."


@dataclass(frozen=True)
class SharingPolicy:
    """Which server paths a request may name, and the limits of one request.

    Attributes:
        shared: Shared mode on (off: a local app, nothing refused).
        roots: Folders the presenter allowed (`--allow-path`), resolved.
        model_roots: More folders models may come from (the models directory, the `--model` folders).
        limits: Request limits (applied in shared mode only).
        auth: Whether visitors log in.
    """

    shared: bool = False
    roots: tuple[Path, ...] = ()
    model_roots: tuple[Path, ...] = ()
    limits: Limits = field(default_factory=Limits)
    auth: bool = False

    @classmethod
    def for_app(
        cls,
        host: str,
        shared: bool = False,
        allow_paths: Iterable[str | Path] = (),
        models_dir: Path | None = None,
        preselected: Iterable[str] = (),
        limits: Limits | None = None,
        auth: bool = False,
    ) -> SharingPolicy:
        """The policy of an app served on `host`: shared when asked, or when `host` is not a loopback address.

        Args:
            host: The address the app listens on.
            shared: `--shared`: shared even on a loopback address.
            allow_paths: `--allow-path` folders.
            models_dir: The models directory (its model folders may be picked).
            preselected: The models the presenter named with `--model` (their folders may be picked).
            limits: Request limits (default `Limits()`).
            auth: Whether visitors log in.

        Raises:
            RefusedError: An allowed folder does not exist.
        """
        roots = []
        for folder in allow_paths:
            path = resolved(str(folder))
            if not path.is_dir():
                raise RefusedError(f"--allow-path {folder}: there is no folder there.")
            roots.append(path)
        model_roots = [resolved(str(models_dir))] if models_dir is not None else []
        model_roots += [resolved(m) for m in preselected if m and Path(m).expanduser().is_dir()]
        return cls(
            shared=bool(shared) or not is_loopback(host),
            roots=tuple(roots),
            model_roots=tuple(model_roots),
            limits=limits or Limits(),
            auth=auth,
        )

    # Paths ---------------------------------------------------------------------------------------------------------

    def allows(self, path: str | Path, extra: Sequence[Path] = ()) -> bool:
        """Whether a path, resolved, lies under an allowed root (always, in a local app)."""
        if not self.shared:
            return True
        try:
            target = resolved(str(path))
        except RefusedError:
            return False
        return any(target == root or root in target.parents for root in (*self.roots, *extra))

    def check_folder(self, text: str | Path | None, what: str = "folder", also: Sequence[Path] = ()) -> Path:
        """The folder a visitor typed, resolved, if this app lets visitors use it.

        Every input that names a server path calls this (Fine-tune's folder of examples, the fusion heads' clips,
        the trial log's folder, Search's index folders).

        Args:
            text: What was typed.
            what: What the folder is for, in the sentence ("folder of examples").
            also: More folders allowed for this input only (the presenter's own choices, e.g. `--trial-log`).

        Returns:
            The path: as typed (with `~` expanded) in a local app, resolved in a shared one.

        Raises:
            RefusedError: Shared mode, and the path lies outside every allowed folder (or is not a path at all).
        """
        raw = str(text or "").strip()
        if not self.shared:
            return Path(raw).expanduser()
        extra = tuple(resolved(str(p)) for p in also)
        if not raw:
            where = self._roots_words((*self.roots, *extra))
            raise RefusedError(f"This app is shared: type the path of the {what}, a folder inside {where}.")
        if self.allows(raw, extra):
            return resolved(raw)
        if not self.roots and not extra:
            raise RefusedError(
                f"This app is shared, so it does not open folders on its computer: the {what} cannot be used. "
                "The presenter can allow a folder with --allow-path."
            )
        raise RefusedError(
            f"This app is shared, so the {what} must be inside {self._roots_words((*self.roots, *extra))}; "
            f"“{_shown(raw)}” is not."
        )

    def check_model(self, name: str | None, task: str | None = None) -> None:
        """Refuses, in shared mode, a model that is neither a registry row nor a folder under an allowed root.

        Called before anything looks at the name on disk, so a refusal says nothing about what exists there.

        Raises:
            RefusedError: Shared mode, and `name` is a path outside the allowed folders.
        """
        name = (name or "").strip() if isinstance(name, str) else name
        if not self.shared or not name:
            return
        if not isinstance(name, str):
            raise RefusedError("Pick a model from the list.")
        from studio.registry import REGISTRY

        known = REGISTRY.find(task, name) if task else next((s for s in REGISTRY if s.hub_id == name), None)
        if known is not None and not Path(name).expanduser().is_dir():
            return  # a registry row: resolved as a hub id, never as a path
        if self.allows(name, self.model_roots):
            return
        roots = (*self.roots, *self.model_roots)
        where = self._roots_words(roots) if roots else "no folder: pick a model from the list"
        raise RefusedError(
            f"This app is shared, so models come from its list or from model folders inside {where}; "
            f"“{_shown(name)}” is not one of them."
        )

    def folders_hint(self) -> str | None:
        """What a folder box says about which folders it takes: None locally (any folder on this computer)."""
        if not self.shared:
            return None
        if not self.roots:
            return "This app is shared: it opens no folders on its computer."
        return f"This app is shared: only folders inside {self._roots_words(self.roots)}."

    def _roots_words(self, roots: Sequence[Path]) -> str:
        return " or ".join(str(r) for r in roots) if roots else "no folder"

    # Limits --------------------------------------------------------------------------------------------------------

    def check_text(self, text: str, what: str = "text") -> None:
        """Refuses an over-long text in shared mode."""
        if self.shared and isinstance(text, str) and len(text) > self.limits.text_chars:
            raise RefusedError(
                f"That {what} is {len(text):,} characters long; this shared app takes at most "
                f"{self.limits.text_chars:,}."
            )

    def check_labels(self, labels: Sequence[str], what: str = "labels") -> None:
        """Refuses too many or too long labels (or classes) in shared mode."""
        if not self.shared:
            return
        if len(labels) > self.limits.labels:
            raise RefusedError(
                f"That is {len(labels)} {what}; this shared app compares at most {self.limits.labels} at a time."
            )
        for label in labels:
            if len(label) > self.limits.label_chars:
                raise RefusedError(
                    f"One of the {what} is {len(label)} characters long; this shared app takes at most "
                    f"{self.limits.label_chars} per label."
                )

    def check_photo(self, path: str | Path) -> None:
        """Refuses a photo file over the photo size limit in shared mode."""
        size = _size(path)
        if self.shared and size > self.limits.photo_mb * 1e6:
            raise RefusedError(
                f"That photo is {size / 1e6:.0f} MB; this shared app takes photos up to {self.limits.photo_mb:g} MB."
            )

    def check_duration(self, seconds: float | None, kind: str) -> None:
        """Refuses a recording longer than its limit in shared mode.

        Args:
            seconds: The recording's length (None when it could not be read: the reader will say why).
            kind: "video" or "audio".
        """
        if not self.shared or seconds is None:
            return
        limit = self.limits.video_seconds if kind == "video" else self.limits.audio_seconds
        if seconds > limit:
            noun = "video" if kind == "video" else "recording"
            raise RefusedError(
                f"That {noun} lasts {_minutes(seconds)}; this shared app takes {noun}s of up to {_minutes(limit)}. "
                f"Cut it shorter and try again."
            )


LOCAL = SharingPolicy()


def resolved(text: str) -> Path:
    """A path as the file system sees it: `~` expanded, made absolute, `..` and every symlink resolved.

    Raises:
        RefusedError: The text is no path (empty, a NUL byte, too long).
    """
    if not text or "\0" in text or len(text) > 4096:
        raise RefusedError("That is not a folder path.")
    try:
        return Path(os.path.realpath(Path(text).expanduser()))
    except (OSError, ValueError, RuntimeError) as exc:  # a symlink loop, an unreadable part
        raise RefusedError("That is not a folder path.") from exc


def _shown(text: str) -> str:
    return text if len(text) <= 80 else text[:77] + "…"


def _size(path: str | Path) -> int:
    try:
        return os.stat(path).st_size
    except (OSError, ValueError, TypeError):
        return 0


def _minutes(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} seconds"
    return f"{seconds / 60:.0f} minutes"


def parse_logins(pairs: Sequence[str] = (), file: str | Path | None = None) -> list[tuple[str, str]]:
    """The logins of `--auth USER:PASSWORD` (repeatable) and `--auth-file FILE` (one USER:PASSWORD a line; blank
    lines and lines starting with # are skipped).

    Raises:
        StudioError: A login without a name or a password, or a file that cannot be read.
    """
    lines = [("--auth", pair) for pair in pairs]
    if file is not None:
        try:
            text = Path(file).expanduser().read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise StudioError(f"The login file {file} cannot be read ({exc.__class__.__name__}).") from None
        lines += [
            (f"Line {n} of {file}", line.strip())
            for n, line in enumerate(text.splitlines(), 1)
            if line.strip() and not line.strip().startswith("#")
        ]
    logins = []
    for where, pair in lines:
        user, sep, password = pair.partition(":")
        if not sep or not user.strip() or not password:
            raise StudioError(f"{where} is not a login: write USER:PASSWORD, for example presenter:room42.")
        logins.append((user.strip(), password))
    if file is not None and not logins:
        raise StudioError(f"The login file {file} has no USER:PASSWORD line.")
    return logins


def parse_limits(pairs: Sequence[str] = ()) -> Limits:
    """`Limits` with the `--limit NAME=VALUE` settings applied (names are `Limits`' fields, e.g. photo_mb=10).

    Raises:
        StudioError: An unknown name, or a value that is not a positive number.
    """
    from dataclasses import fields, replace

    kinds = {f.name: f.type for f in fields(Limits)}
    changes = {}
    for pair in pairs:
        name, _, value = pair.partition("=")
        name = name.strip().replace("-", "_")
        if name not in kinds:
            raise StudioError(f"--limit {pair}: the limits are {', '.join(kinds)} (for example --limit photo_mb=10).")
        try:
            number = int(value) if kinds[name] in (int, "int") else float(value)
        except ValueError:
            number = -1
        if not number > 0 or number == float("inf"):
            raise StudioError(f"--limit {pair}: the value must be a positive number.")
        changes[name] = number
    return replace(Limits(), **changes)
