"""The manifest of an export folder: where the graphs came from, their hashes, and how far they are from PyTorch."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from studio.errors import CorruptExportError

MANIFEST = "manifest.json"
FORMAT_VERSION = 1


def sha256_file(path: Path) -> str:
    """sha256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def graph_files(directory: Path, stem: str) -> list[Path]:
    """The files one graph consists of: the .onnx and, for large graphs, its external data file."""
    files = [directory / f"{stem}.onnx"]
    data = directory / f"{stem}.onnx.data"
    if data.exists():
        files.append(data)
    return files


def hash_graph(directory: Path, stem: str) -> dict[str, str]:
    """sha256 of each file of a graph, by file name."""
    return {f.name: sha256_file(f) for f in graph_files(directory, stem)}


def read_manifest(directory: Path) -> dict | None:
    """The manifest of an export folder, or None when there is none or it is unreadable."""
    try:
        data = json.loads((directory / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("format") == FORMAT_VERSION else None


def verify_graphs(directory: Path, manifest: dict, variant: str = "fp32") -> None:
    """Checks every graph file of a variant against the sha256 recorded at export.

    Raises:
        CorruptExportError: A file is missing or its content changed.
    """
    for entry in graphs_of(manifest, variant).values():
        for file_name, expected in entry["sha256"].items():
            path = directory / file_name
            if not path.is_file():
                raise CorruptExportError(
                    f"The exported model in {directory} is incomplete: {file_name} is missing. Export it again."
                )
            if sha256_file(path) != expected:
                raise CorruptExportError(
                    f"The exported graph {file_name} in {directory} has changed since it was exported (its checksum "
                    "does not match the manifest), so Studio will not run it. Export the model again."
                )


def graphs_of(manifest: dict, variant: str) -> dict[str, dict]:
    """The graph entries of a variant: fp32 graphs, with the variant's replacements over them."""
    graphs = dict(manifest.get("graphs", {}))
    if variant != "fp32":
        graphs.update(manifest.get("variants", {}).get(variant, {}).get("graphs", {}))
    return graphs


def variants_of(manifest: dict | None) -> list[str]:
    """The variants an export offers, fp32 first."""
    if not manifest:
        return []
    return ["fp32", *sorted(manifest.get("variants", {}))]
