"""Atomic files: what a user made (exports, classifiers, checkpoints, zips, speech) is never left half-written.

`replaced_on_success` hands out a temporary file in the destination's folder (same file system, so the final rename
is atomic); the destination appears, whole, only when the block ends without an exception, and the temporary file is
removed on any failure, Ctrl-C or cancelled request included. `directory_replaced_on_success` does the same for a
folder of files (an export, a fusion head).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def replaced_on_success(path: Path, mode: int | None = None) -> Iterator[Path]:
    """Yields a temporary path beside `path`; renames it over `path` if the block succeeds, else deletes it.

    Args:
        path: The file to write.
        mode: Permission bits for the result (mkstemp makes files private, 0600).
    """
    path = Path(path)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
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
    tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}.{label}-"))
    try:
        yield tmp
        old = None
        if final.exists():
            old = final.with_name(f".{final.name}.old-{dt.datetime.now().strftime('%Y%m%d%H%M%S%f')}")
            final.rename(old)
        tmp.rename(final)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
