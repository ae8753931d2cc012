"""`studio bench search`: what searching costs at scale, and what indexing a gallery costs per photo.

- Vectors: `vectors` (default 1,000,000) random unit vectors of 512 numbers, drawn around 1,000 random centres (real
  embeddings cluster by what photos show; uniformly random 512-d vectors have no near neighbours, and on them every
  approximate index needs to scan nearly everything). The index is built by the same `build_vector_index` the app
  uses (IVF above 50,000 vectors, `nprobe` chosen for recall@10 >= 0.95): build time, memory, query p50/p95 for the
  top 10 one query at a time, and recall@10 against exact search on 200 fresh queries from the same distribution.
- Exact search (FAISS inner product) over 50,000 of those vectors: query p50/p95.
- Embedding: the full-size CLIP image encoder (random weights) at a batch of 32, PyTorch against ONNX Runtime.
"""

from __future__ import annotations

import numpy as np

from studio.bench.timing import build_bench_model, image_embedding_throughput, report_header, scratch_folder, time_calls
from studio.progress import Progress, no_progress, scaled

DIM = 512
CENTRES = 1000
SPREAD = 1.0  # noise as long as the centre: a vector's cosine with its centre is about 0.7
EXACT_VECTORS = 50_000
RECALL_QUERIES = 200
TARGETS = {"ivf_p50_ms": 5.0, "ivf_recall_at_10": 0.95, "exact_50k_p50_ms": 10.0}


def clustered_unit_vectors(n: int, rng: np.random.Generator, centres: np.ndarray, chunk: int = 100_000) -> np.ndarray:
    """`n` unit vectors, each a random centre plus Gaussian noise, normalized (built in chunks to bound memory)."""
    out = np.empty((n, centres.shape[1]), np.float32)
    for start in range(0, n, chunk):
        m = min(chunk, n - start)
        noise = rng.standard_normal((m, centres.shape[1]), dtype=np.float32) * (SPREAD / np.sqrt(centres.shape[1]))
        block = centres[rng.integers(0, len(centres), m)] + noise
        out[start : start + m] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


def _rss_mb() -> float:
    try:
        pages = int(open("/proc/self/statm").read().split()[1])
        import os

        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError):
        return float("nan")


def run_bench(
    model: str | None = None,
    runs: int = 200,
    batch: int = 32,
    device: str = "cpu",
    vectors: int = 1_000_000,
    progress: Progress = no_progress,
) -> dict:
    """Runs the benchmark and returns a JSON-able report.

    Args:
        model: Registry hub id of the zero-shot model whose image encoder to time (default: the default one).
        runs: Timed queries per measurement (and timed batches for embedding, at least 3).
        batch: Pictures per embedding batch.
        device: "cpu", "cuda" or "auto" (embedding; FAISS runs on the CPU).
        vectors: How many vectors the approximate index holds.
        progress: Receives fractions and sentences.
    """
    import faiss

    report: dict = report_header("search", model or "default zero-shot model", device, faiss.omp_get_max_threads())
    report.update(vector_search(vectors, runs, scaled(progress, 0.0, 0.6)))  # its vectors are freed on return
    progress(0.6, "Building the full-size image encoder with random weights…")
    bench = build_bench_model("zero-shot", model)
    report["model"] = bench.spec.hub_id
    with scratch_folder() as work:
        measured = image_embedding_throughput(bench, batch, max(3, runs // 40), device, work, scaled(progress, 0.6, 1))
    report["runtime"] = measured["runtime"]
    report["parity_max_abs_diff"] = measured["parity"]
    report[f"embedding_images_per_s_batch{batch}"] = measured["images_per_s"]
    report["embedding_speedup_onnx_vs_torch"] = measured["speedup_onnx_vs_torch"]
    approx, exact = report["approximate"], report["exact_50k"]
    report["targets"] = {
        "ivf_p50_under_5ms": {"value": approx["query_top10"]["p50_ms"], "met": approx["query_top10"]["p50_ms"] < 5},
        "ivf_recall_at_10_at_least_0.95": {
            "value": approx["recall_at_10_fresh_queries"],
            "met": approx["recall_at_10_fresh_queries"] >= 0.95,
        },
        "exact_50k_p50_under_10ms": {
            "value": exact["query_top10"]["p50_ms"],
            "met": exact["query_top10"]["p50_ms"] < 10,
        },
    }
    progress(1.0, "Done")
    return report


def vector_search(vectors: int, runs: int, progress: Progress = no_progress) -> dict:
    """The approximate index over `vectors` clustered random unit vectors, and exact search over 50,000 of them."""
    import faiss

    from studio.search.vectors import build_vector_index, recall_against

    rng = np.random.default_rng(0)
    progress(0.0, f"Drawing {vectors:,} random unit vectors…")
    centres = rng.standard_normal((CENTRES, DIM), dtype=np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    data = clustered_unit_vectors(vectors, rng, centres)
    queries = clustered_unit_vectors(max(runs, RECALL_QUERIES), rng, centres)
    one = [queries[i : i + 1] for i in range(runs)]

    def timed(index) -> dict:
        turn = iter(range(10**9))
        return time_calls(lambda: index.search(one[next(turn) % runs], 10), runs, warmup=5)

    progress(0.05, "Building the approximate index…")
    before = _rss_mb()
    index = build_vector_index(data, progress=scaled(progress, 0.05, 0.9))
    memory = _rss_mb() - before
    _, truth = faiss.knn(queries[:RECALL_QUERIES], data, 10, metric=faiss.METRIC_INNER_PRODUCT)
    _, found = index.search(queries[:RECALL_QUERIES], 10)
    out = {"vectors": {"count": vectors, "dim": DIM, "distribution": f"{CENTRES} random centres + noise"}}
    out["approximate"] = {
        "index": index.describe(),
        **index.settings(),
        "build_s": round(index.build_s, 2),
        "memory_mb": round(memory, 1),
        "query_top10": timed(index),
        "recall_at_10_fresh_queries": round(recall_against(found, truth), 4),
    }
    progress(0.9, f"Timing exact search over {EXACT_VECTORS:,} vectors…")
    exact = build_vector_index(data[:EXACT_VECTORS], exact_below=EXACT_VECTORS + 1)
    out["exact_50k"] = {"index": exact.describe(), "query_top10": timed(exact)}
    return out
