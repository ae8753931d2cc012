"""What every task shares: loading a model's graphs for the task, and reporting what they run on."""

from __future__ import annotations

from pathlib import Path

from studio.backends.base import GraphSet, RuntimeInfo
from studio.progress import Progress, no_progress


class GraphTask:
    """A task that runs a model's graphs; subclasses set `TASK` and build themselves from a `GraphSet`."""

    TASK: str = ""

    def __init__(self, graphs: GraphSet) -> None:
        self.graphs = graphs

    @property
    def family(self):
        """The family module of the model (`studio.families`): what it knows about its graphs' inputs."""
        from studio.families import get_family

        return get_family(self.graphs.family)

    def text_tokenizer(self):
        """The model's tokenizer for label texts, padding and truncating to the family's text length."""
        from studio.media.text import TextTokenizer

        return TextTokenizer(Path(self.graphs.files_dir), self.family.TEXT_MAX_LENGTH)

    def embed_texts(self, texts: list[str], batch: int = 64):
        """Two-tower models (CLIP, CLAP): (len(texts), D) unit-length text embeddings of the texts as given, from the
        "text_encoder" graph, `batch` texts per run (the task sets `self.tokenizer`)."""
        import numpy as np

        from studio.scores import normalize

        embeds = [
            self.graphs.graphs["text_encoder"].run(self.tokenizer(texts[i : i + batch]))["text_embeds"]
            for i in range(0, len(texts), batch)
        ]
        return normalize(np.concatenate(embeds).astype(np.float32))

    @classmethod
    def load(
        cls,
        model: str | None,
        models_dir: Path,
        backend: str = "auto",
        device: str = "auto",
        progress: Progress = no_progress,
        **options,
    ):
        """Resolves a model for this task, (downloads and exports it,) loads its graphs and returns the task.

        Args:
            model: Hub id or local directory; None for the task's default model.
            models_dir: Root of exports and local copies.
            backend: "auto", "onnx" or "torch".
            device: "auto", "cuda" or "cpu".
            progress: Receives fractions and sentences.
            **options: More `studio.loading.load_graphs` options (e.g. variant="int8").
        """
        from studio.loading import load_graphs
        from studio.sources import resolve

        source = resolve(model, cls.TASK, models_dir)
        return cls(load_graphs(source, models_dir, backend=backend, device=device, progress=progress, **options))

    @property
    def runtime(self) -> RuntimeInfo:
        """What the graphs really run on."""
        return self.graphs.runtime
