"""Embedding a gallery too big for one machine with Ray Data: `map_batches` over the zero-shot model's image encoder,
one encoder per actor (loaded once, the same `ZeroShotTask` the app runs), `BATCH` photos per call.

`address` "local" starts a Ray instance on this computer (bound to 127.0.0.1, no dashboard) and stops it afterwards;
any other address ("auto", "ray://host:10001") joins that cluster. A photo that cannot be read comes back with its
reason instead of a vector, as in-process indexing skips it.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from studio.search.embedding import BATCH


class PhotoEncoder:
    """A Ray Data actor: decodes a batch of photo paths and returns their unit vectors (or why a photo failed)."""

    def __init__(self, model: str | None, models_dir: str, backend: str, device: str) -> None:
        from studio.tasks.zero_shot import ZeroShotTask

        self.task = ZeroShotTask.load(model, Path(models_dir), backend=backend, device=device)

    def __call__(self, batch: dict) -> dict:
        from studio.errors import StudioError
        from studio.media.image import load_image

        paths = [str(p) for p in batch["path"]]
        pictures, errors = [], []
        for path in paths:
            try:
                pictures.append(load_image(Path(path)))
                errors.append("")
            except StudioError as exc:
                pictures.append(None)
                errors.append(f"not readable: {exc}")
        good = [p for p in pictures if p is not None]
        vectors = self.task.forward(self.task.preprocessing.batch(good)) if good else np.zeros((0, 1), np.float32)
        dim = vectors.shape[1]
        out, j = [], 0
        for picture in pictures:
            if picture is None:
                out.append(np.zeros(dim, np.float32))
            else:
                out.append(vectors[j].astype(np.float32))
                j += 1
        return {"path": np.array(paths), "vector": np.stack(out), "error": np.array(errors)}


def embed_photos_on_ray(
    paths: list[Path], runtime, models_dir: Path, address: str = "local", num_cpus: int | None = None
) -> tuple[list[np.ndarray | None], dict[str, str]]:
    """Unit vectors of photos, computed by Ray Data actors.

    Args:
        paths: Photo files.
        runtime: `studio.services.base.Runtime` of the index's model.
        models_dir: The models directory (each actor loads the model from it).
        address: "local" (start one on this computer), "auto" or a "ray://host:port" address.
        num_cpus: CPUs of a local instance (default: this computer's).

    Returns:
        (one vector or None per path, in order; {path: why it failed})
    """
    import ray

    started_here = False
    if not ray.is_initialized():
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        if address in (None, "", "local"):
            ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False, _node_ip_address="127.0.0.1")
        else:
            ray.init(address=address, log_to_driver=False)
        started_here = True
    try:
        dataset = ray.data.from_items([{"path": str(p)} for p in paths])
        encoded = dataset.map_batches(
            PhotoEncoder,
            fn_constructor_kwargs={
                "model": runtime.model,
                "models_dir": str(models_dir),
                "backend": runtime.backend,
                "device": runtime.device,
            },
            batch_size=BATCH,
            batch_format="numpy",
            # one encoder per CPU of the cluster at most, starting with one (each holds the model in memory)
            concurrency=(1, max(1, int(ray.cluster_resources().get("CPU", 1)))),
            num_cpus=1,
        )
        rows = encoded.take_all()
    finally:
        if started_here:
            ray.shutdown()
    by_path = {str(r["path"]): r for r in rows}
    vectors, failed = [], {}
    for path in map(str, paths):
        row = by_path.get(path)
        if row is None or row["error"]:
            failed[path] = str(row["error"]) if row is not None else "not embedded by the cluster"
            vectors.append(None)
        else:
            vectors.append(np.asarray(row["vector"], np.float32))
    return vectors, failed
