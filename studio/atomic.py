"""Atomic files: what a user made (exports, classifiers, checkpoints, zips, speech) is never left half-written.

`replaced_on_success` hands out a temporary file in the destination's folder (same file system, so the final rename
is atomic); the destination appears, whole, only when the block ends without an exception, and the temporary file is
removed on any failure, Ctrl-C or cancelled request included.
"""

from __future__ import annotations

import contextlib
import json
import os
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
