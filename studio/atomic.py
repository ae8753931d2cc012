"""Atomic files: what a user made (exports, classifiers, checkpoints, zips, speech) is never left half-written.

`replaced_on_success` hands out a temporary file in the destination's folder (same file system, so the final rename
is atomic); the destination appears, whole, only when the block ends without an exception, and the temporary file is
removed on any failure, Ctrl-C or cancelled request included. `directory_replaced_on_success` does the same for a
folder of files (an export, a fusion head).

Temporary names carry the writing process's id (`.<name>.<label>-p<pid>-<random>`, `temporary_prefix`), so a
temporary left behind by a process that was killed (SIGKILL, power loss: no `finally` runs) is known as such:
`remove_leftovers` deletes those at start.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger(__name__)


@contextlib.contextmanager
def replaced_on_success(path: Path, mode: int | None = None) -> Iterator[Path]:
    """Yields a temporary path beside `path`; renames it over `path` if the block succeeds, else deletes it.

    Args:
        path: The file to write.
        mode: Permission bits for the result (mkstemp makes files private, 0600).
    """
    path = Path(path)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=temporary_prefix(path.name, "writing"), suffix=".tmp")
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        if tmp.stat().st_size and mode is None:
            _fsync(tmp)
        if mode is not None:
            tmp.chmod(mode)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _fsync(path: Path) -> None:
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())


def write_json_atomic(path: Path, data: dict) -> None:
    """Writes JSON (indented, keys sorted) to `path` atomically."""
    with replaced_on_success(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True))


@contextlib.contextmanager
def directory_replaced_on_success(final: Path, label: str = "writing") -> Iterator[Path]:
    """Yields a new temporary folder beside `final`; it replaces `final` if the block succeeds, else it is deleted.

    An older `final` is moved aside first and deleted only once the new folder is in place, so at every moment the
    destination is either the old complete folder or the new complete one.

    Args:
        final: The folder to write.
        label: A word in the temporary folder's name (`.<name>.<label>-<random>`), saying what left it behind.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=temporary_prefix(final.name, label)))
    try:
        yield tmp
        old = None
        if final.exists():
            stamp = dt.datetime.now().strftime("%Y%m%d%H%M%S%f")
            old = final.with_name(f"{temporary_prefix(final.name, 'old')}{stamp}")
            final.rename(old)
        tmp.rename(final)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def temporary_prefix(name: str, label: str) -> str:
    """The start of a temporary file's or folder's name beside `name`: `.<name>.<label>-p<pid>-`.

    Args:
        name: The name of what is being written ("" for a temporary that belongs to no one name).
        label: What is happening ("exporting", "saving", "importing", "indexing"...), shown to whoever finds it.
    """
    assert label in LABELS, label  # remove_leftovers knows only these
    return f".{name}.{label}-p{os.getpid()}-" if name else f".{label}-p{os.getpid()}-"


# What Studio's temporaries are doing (the label in their names); a search index writes with "indexing".
LABELS = ("exporting", "saving", "creating", "importing", "writing", "indexing", "training", "old", "quant")
# A temporary of ours: hidden, a label word, the writer's process id (older names: without it); or a hidden .tmp file.
_TEMPORARY = re.compile(rf"^\.(?:.+\.)?(?:{'|'.join(LABELS)})-(?:p(?P<pid>\d+)-)?|^\..+\.tmp$")
STALE_AFTER_S = 3600  # a temporary without a process id is left alone for an hour: a long export may still run


def remove_leftovers(root: Path, depth: int = 4, now: float | None = None) -> list[Path]:
    """Deletes temporary files and folders that killed processes left under `root` (exports, classifiers, fusion
    heads, indexes: anything written through this module or named with `temporary_prefix`).

    A temporary is stale when the process named in it no longer runs, or (names without a process id) when nothing
    in it changed for `STALE_AFTER_S`. Temporaries of this process and of running processes are kept.

    Args:
        root: The models directory (or any folder Studio writes into).
        depth: How many folder levels below `root` to look at.
        now: The current time (for tests).

    Returns:
        What was removed.
    """
    removed: list[Path] = []
    now = time.time() if now is None else now
    pending = [(Path(root), 0)]
    while pending:
        folder, level = pending.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            match = _TEMPORARY.match(entry.name) if entry.name.startswith(".") else None
            if match is not None and _stale(Path(entry.path), match.groupdict().get("pid"), now):
                try:
                    if entry.is_dir(follow_symlinks=False):
                        shutil.rmtree(entry.path)
                    else:
                        os.unlink(entry.path)
                except OSError as exc:
                    log.info("could not remove %s: %s", entry.path, exc)
                    continue
                removed.append(Path(entry.path))
            elif match is None and level < depth and entry.is_dir(follow_symlinks=False):
                pending.append((Path(entry.path), level + 1))
    return removed


def _stale(path: Path, pid: str | None, now: float) -> bool:
    if pid is not None:
        return int(pid) != os.getpid() and not _running(int(pid))
    return now - _newest_change(path) > STALE_AFTER_S


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: it runs, as another user
        return True
    return True


def _newest_change(path: Path) -> float:
    newest = path.lstat().st_mtime
    if path.is_dir() and not path.is_symlink():
        for sub in path.rglob("*"):
            try:
                newest = max(newest, sub.lstat().st_mtime)
            except OSError:
                continue
    return newest
