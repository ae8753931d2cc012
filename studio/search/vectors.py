"""The vector index behind a search: FAISS, exact below `EXACT_BELOW` vectors, approximate (IVF) above.

Vectors are unit length, so the inner product is the cosine similarity. An exact index (`IndexFlatIP`) compares a
query with every vector: 50,000 vectors of 512 numbers take a few milliseconds. Above that, an inverted-file index
(IVF: the vectors are grouped around `nlist` k-means centres, a query searches the `nprobe` nearest groups) answers in
a fraction of the time; `nprobe` is chosen when the index is built, as the smallest number of groups for which the
top-10 results agree with exact search at least `TARGET_RECALL` of the time (measured on queries made from the index's
own vectors, each query's own vector left out), and that measured recall is kept with the index and shown.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from studio.progress import Progress, no_progress

EXACT_BELOW = 50_000
TARGET_RECALL = 0.95
TUNING_QUERIES = 200
_K = 10
_TRAIN_PER_LIST = 64  # k-means training points per list: faiss asks for at least 39


@dataclass
class VectorIndex:
    """A FAISS index and how it searches.

    Attributes:
        index: The faiss index (inner product).
        kind: "exact" or "ivf".
        nlist: IVF lists (0 for exact).
        nprobe: Lists searched per query (0 for exact).
        recall_at_10: Top-10 agreement with exact search, measured at build (1.0 for exact).
        build_s: Seconds it took to build.
    """

    index: object
    kind: str
    nlist: int = 0
    nprobe: int = 0
    recall_at_10: float = 1.0
    build_s: float = 0.0

    @property
    def count(self) -> int:
        return int(self.index.ntotal)

    def describe(self) -> str:
        """The index in words, as the tab and `studio index info` show it."""
        if self.kind == "exact":
            return f"exact search over all {self.count:,} vectors (FAISS inner product)"
        return (
            f"approximate search (FAISS IVF: {self.nlist:,} groups, {self.nprobe:,} searched per query; top-10 agrees "
            f"with exact search {self.recall_at_10:.0%} of the time, measured when it was built)"
        )

    def settings(self) -> dict:
        """Plain data for the index's JSON."""
        return {
            "kind": self.kind,
            "nlist": self.nlist,
            "nprobe": self.nprobe,
            "recall_at_10": round(self.recall_at_10, 4),
            "build_s": round(self.build_s, 3),
        }

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The `k` most similar vectors of each query: (scores, ids), each (Q, k'), k' = min(k, count), best first."""
        k = min(int(k), self.count)
        if k <= 0:
            return np.zeros((len(queries), 0), np.float32), np.zeros((len(queries), 0), np.int64)
        scores, ids = self.index.search(np.ascontiguousarray(queries, dtype=np.float32), k)
        return scores, ids

    def save(self, path: Path) -> None:
        import faiss

        faiss.write_index(self.index, str(path))

    @classmethod
    def read(cls, path: Path, settings: dict) -> VectorIndex:
        """Reads an index written by `save`, with the settings kept beside it."""
        import faiss

        out = cls(faiss.read_index(str(path)), settings["kind"], int(settings.get("nlist", 0)))
        out.recall_at_10 = float(settings.get("recall_at_10", 1.0))
        out.build_s = float(settings.get("build_s", 0.0))
        if out.kind == "ivf":
            out.set_nprobe(int(settings["nprobe"]))
        return out

    def set_nprobe(self, nprobe: int) -> None:
        import faiss

        self.nprobe = int(nprobe)
        faiss.extract_index_ivf(self.index).nprobe = self.nprobe


def lists_for(count: int) -> int:
    """IVF lists for `count` vectors: the power of two nearest sqrt(count), so a query's cost (scanning the centres,
    then `nprobe` lists of about sqrt(count) vectors) stays balanced."""
    return int(2 ** round(math.log2(max(math.sqrt(count), 16))))


def build_vector_index(
    vectors: np.ndarray,
    exact_below: int = EXACT_BELOW,
    target_recall: float = TARGET_RECALL,
    seed: int = 0,
    progress: Progress = no_progress,
) -> VectorIndex:
    """A FAISS index of unit vectors: exact below `exact_below` vectors, IVF with a measured `nprobe` above.

    Args:
        vectors: (N, D) unit-length float32 rows.
        exact_below: Fewer vectors than this get an exact index.
        target_recall: The top-10 agreement with exact search the IVF's `nprobe` must reach.
        seed: For the k-means training sample and the tuning queries.
        progress: Receives fractions and sentences.
    """
    import faiss

    started = time.perf_counter()
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    n, dim = vectors.shape
    if n < exact_below:
        index = faiss.IndexFlatIP(dim)
        index.add(vectors)
        return VectorIndex(index, "exact", build_s=time.perf_counter() - started)
    nlist = lists_for(n)
    rng = np.random.default_rng(seed)
    index = faiss.index_factory(dim, f"IVF{nlist},Flat", faiss.METRIC_INNER_PRODUCT)
    progress(0.0, f"Grouping {n:,} vectors into {nlist:,} groups…")
    sample = vectors[np.sort(rng.choice(n, size=min(n, nlist * _TRAIN_PER_LIST), replace=False))]
    index.train(sample)
    progress(0.4, f"Adding {n:,} vectors to their groups…")
    index.add(vectors)
    out = VectorIndex(index, "ivf", nlist=nlist)
    progress(0.8, "Measuring how many groups a search needs…")
    nprobe, out.recall_at_10 = tune_nprobe(out, vectors, target_recall, rng)
    out.set_nprobe(nprobe)
    out.build_s = time.perf_counter() - started
    progress(1.0, "Index ready.")
    return out


def tune_nprobe(
    index: VectorIndex, vectors: np.ndarray, target_recall: float, rng: np.random.Generator
) -> tuple[int, float]:
    """The smallest `nprobe` whose top-10 agrees with exact search at least `target_recall`.

    The values tried are `nprobe_steps(nlist)`. The queries are stored vectors; each query's own vector (its first
    hit) is left out of both result lists, so the agreement is measured on the 10 neighbours after it.

    Returns:
        (nprobe, the recall@10 it reached)
    """
    import faiss

    n = len(vectors)
    queries = vectors[rng.choice(n, size=min(n, TUNING_QUERIES), replace=False)]
    # Brute force without building a second index (no copy of the vectors).
    _, truth = faiss.knn(queries, vectors, _K + 1, metric=faiss.METRIC_INNER_PRODUCT)
    truth = truth[:, 1:]
    for candidate in nprobe_steps(index.nlist):
        index.set_nprobe(candidate)
        _, found = index.index.search(queries, _K + 1)
        recall = recall_against(found[:, 1:], truth)
        if recall >= target_recall:
            return candidate, recall
    return index.nlist, 1.0


def nprobe_steps(nlist: int) -> list[int]:
    """The `nprobe` values tried, smallest first: 1, 2, 3, 4, 6, 8, 12, 16, ... (steps of about 1.5x) up to `nlist`."""
    steps, power = [], 1
    while power <= nlist:
        steps += [power] + ([power * 3 // 2] if power >= 2 and power * 3 // 2 <= nlist else [])
        power *= 2
    return sorted(set(steps) | {nlist})


def recall_against(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean fraction of each row of `truth` (the exact top-k ids) that `found` also holds."""
    hits = sum(len(set(f.tolist()) & set(t.tolist())) for f, t in zip(found, truth))
    return hits / max(truth.size, 1)
