"""`studio bench TASK`: full-size architectures with random weights, ONNX Runtime against PyTorch in one run.

A row per benchmark: the module whose `run_bench` measures it, its default number of runs, and which of the shared
options (--batch, --no-int8) it takes.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from studio.cli.common import DEVICES, Command, tqdm_progress


@dataclass(frozen=True)
class Bench:
    module: str
    runs: int
    batch: bool = False
    int8: bool = False
    batch_size: int = 8  # --batch's default
    vectors: bool = False  # takes --vectors (how many vectors to index)


BENCHES = {
    "zero-shot": Bench("studio.bench.zero_shot", runs=30, batch=True, int8=True),
    "caption": Bench("studio.bench.caption", runs=30),
    "finetune": Bench("studio.bench.finetune", runs=30, batch=True),
    "video": Bench("studio.bench.video", runs=30),
    "av-events": Bench("studio.bench.av_events", runs=5, int8=True),
    "read-text": Bench("studio.bench.read_text", runs=20),
    "search": Bench("studio.bench.search", runs=200, batch=True, batch_size=32, vectors=True),
    "vlm": Bench("studio.bench.vlm", runs=3, int8=True),
    "serve": Bench("studio.bench.serve", runs=4),
}


def _arguments(bench: Bench):
    def add(p):
        p.add_argument("--model", default=None, help="registry hub id whose architecture to build (random weights)")
        p.add_argument(
            "--runs", type=int, default=bench.runs, help=f"timed runs per measurement (default {bench.runs})"
        )
        p.add_argument("--device", choices=DEVICES, default="cpu")
        if bench.batch:
            p.add_argument(
                "--batch", type=int, default=bench.batch_size, help="batch size for the throughput measurement"
            )
        if bench.int8:
            p.add_argument("--no-int8", action="store_true", help="skip the int8 variant")
        if bench.vectors:
            p.add_argument("--vectors", type=int, default=1_000_000, help="vectors in the index (default 1,000,000)")

    return add


def _runner(bench: Bench):
    def run(args) -> dict:
        options = {"batch": args.batch} if bench.batch else {}
        if bench.int8:
            options["int8"] = not args.no_int8
        if bench.vectors:
            options["vectors"] = args.vectors
        run_bench = importlib.import_module(bench.module).run_bench
        return run_bench(
            model=args.model, runs=args.runs, device=args.device, progress=tqdm_progress("Benchmark"), **options
        )

    return run


HELP = {
    "read-text": "benchmark read-text: ms per 640x480 frame, real PP-OCR weights, ours against the package's runner",
    "search": "benchmark search: 1M random vectors (IVF build, memory, query p50/p95, recall@10), exact over 50k, "
    "embedding ONNX vs PyTorch at batch 32",
    "serve": "benchmark serving: 1/8/32 concurrent users of the Zero-shot tab, in-process against Ray Serve",
}
BENCH: dict[str, Command] = {
    name: Command(HELP.get(name, f"benchmark {name}: ONNX Runtime against PyTorch"), _arguments(b), _runner(b))
    for name, b in BENCHES.items()
}
