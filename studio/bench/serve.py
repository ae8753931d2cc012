"""`studio bench serve`: Zero-shot photo requests from 1, 8 and 32 concurrent gradio_client users, the app serving in
its own process, on Ray Serve with 1 and 2 replicas, and with the encoder calls batched: all in one run.

The model is the full-size CLIP ViT-B/32 with random weights, saved as a model folder and exported to ONNX as a
user's model is (compute cost does not depend on the weight values). Every configuration runs the real app on
127.0.0.1 and is driven through its HTTP API, so the times include Gradio's queue as a user meets it. Reported per
configuration and number of users: requests/s, p50/p95 latency, errors; Ray's own cost per request (one user, one
replica, against the app's own process) and the memory its processes hold.
"""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import sys
import threading
import time
from pathlib import Path

import numpy as np

from studio.bench.timing import ratio, report_header, scratch_folder
from studio.progress import Progress, no_progress, scaled

TASK = "zero-shot"
LABELS = "mug, keys, phone, person, cat"
CLIENTS = (1, 8, 32)
# The goal on a 2-core CPU: with batching, 8 users get at least 1.5x the in-process throughput at the same
# or lower p95.
TARGET_BATCHED_SPEEDUP_8 = 1.5


def _configurations(cores: int) -> dict[str, tuple[str, dict]]:
    """name -> (serve mode, zero-shot settings row overrides). Replicas share the machine's cores between them."""
    half = max(1, cores // 2)
    return {
        "in-process": ("inprocess", {}),
        "ray-1-replica": ("ray", {"replicas": 1, "num_cpus": cores, "batch": ()}),
        "ray-2-replicas": ("ray", {"replicas": 2, "num_cpus": half, "batch": ()}),
        "ray-1-replica-batched": (
            "ray",
            {"replicas": 1, "num_cpus": cores, "batch": ("image_encoder",), "max_batch_size": 8, "batch_wait_s": 0.01},
        ),
        "ray-2-replicas-batched": (
            "ray",
            {"replicas": 2, "num_cpus": half, "batch": ("image_encoder",), "max_batch_size": 8, "batch_wait_s": 0.01},
        ),
    }


def run_bench(
    model: str | None = None,
    runs: int = 4,
    device: str = "cpu",
    clients: tuple[int, ...] = CLIENTS,
    configurations: tuple[str, ...] | None = None,
    progress: Progress = no_progress,
) -> dict:
    """Runs the benchmark and returns a JSON-able report.

    Args:
        model: Registry hub id whose architecture to build (default: the task's default model, CLIP ViT-B/32).
        runs: Requests each user sends per measurement (one user sends 8 times as many, so its p95 means something).
        device: "cpu", "cuda" or "auto" for the model's graphs.
        clients: Numbers of concurrent users.
        configurations: Names of the configurations to run (default all: in-process, Ray Serve with 1 and 2
            replicas, each with batching on and off).
        progress: Receives fractions and sentences.
    """
    # The app and Ray print to stdout as they start and stop; the report alone goes there.
    with contextlib.redirect_stdout(sys.stderr):
        return _run(model, runs, device, clients, configurations, progress)


def _run(model, runs, device, clients, configurations, progress) -> dict:
    from studio.bench.timing import build_bench_model

    cores = os.cpu_count() or 1
    chosen = _configurations(cores)
    if configurations:
        chosen = {name: chosen[name] for name in configurations}
    progress(0.02, "Building the full-size model with random weights…")
    bench = build_bench_model(TASK, model)
    report = report_header(TASK, bench.spec.hub_id, device, cores)
    report["clients"] = list(clients)
    report["requests_per_client"] = runs
    with scratch_folder() as work:
        folder = _save_model_folder(bench, work / "model")
        models_dir = work / "exported"
        progress(0.05, "Exporting it to ONNX (checked against PyTorch)…")
        from studio.export.pipeline import export_for_task

        export_for_task(TASK, str(folder), models_dir, progress=scaled(progress, 0.05, 0.25))
        photo = _photo(work)
        results: dict = {}
        for i, (name, (mode, row)) in enumerate(chosen.items()):
            step = scaled(progress, 0.25 + 0.75 * i / len(chosen), 0.25 + 0.75 * (i + 1) / len(chosen))
            results[name] = _measure(name, mode, row, folder, models_dir, photo, clients, runs, device, step)
        report["results"] = results
    report["summary"] = _summary(results, clients)
    progress(1.0, "Done.")
    return report


def _save_model_folder(bench, out: Path) -> Path:
    """The random full-size model as a model folder a user could pick: weights, a byte-level CLIP tokenizer (labels
    are encoded once per label set, so the vocabulary does not change the timings) and CLIP's image processor."""
    from transformers import CLIPImageProcessor, CLIPProcessor, CLIPTokenizer

    out.mkdir(parents=True)
    bench.model.save_pretrained(str(out))
    symbols = _byte_symbols()
    vocab = {s: i for i, s in enumerate([*symbols, *(s + "</w>" for s in symbols), "<|startoftext|>", "<|endoftext|>"])}
    (out.parent / "vocab.json").write_text(json.dumps(vocab))
    (out.parent / "merges.txt").write_text("#version: 0.2\n")
    tokenizer = CLIPTokenizer(str(out.parent / "vocab.json"), str(out.parent / "merges.txt"), model_max_length=77)
    size = bench.architecture["vision_config"]["image_size"]
    processor = CLIPImageProcessor(size={"shortest_edge": size}, crop_size={"height": size, "width": size})
    CLIPProcessor(image_processor=processor, tokenizer=tokenizer).save_pretrained(str(out))
    return out


def _byte_symbols() -> list[str]:
    """GPT-2/CLIP's printable stand-ins for the 256 bytes."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    printable += list(range(ord("®"), ord("ÿ") + 1))
    chars, extra = [], 0
    for b in range(256):
        if b in printable:
            chars.append(chr(b))
        else:
            chars.append(chr(256 + extra))
            extra += 1
    return chars


def _photo(work: Path) -> Path:
    """A real photo (scikit-image's coffee cup when installed, else the app's example photo)."""
    from PIL import Image

    path = work / "photo.jpg"
    try:
        import skimage.data

        Image.fromarray(skimage.data.coffee()).save(path, quality=90)
    except ImportError:
        from studio.paths import assets_dir

        path = sorted((assets_dir() / "images").glob("*.jpg"))[0]
    return path


def _measure(name, mode, row, folder, models_dir, photo, clients, runs, device, progress) -> dict:
    from dataclasses import replace

    from studio.serving.cluster import start_serving
    from studio.serving.settings import ServingPlan, settings_for
    from studio.ui.app import launch

    progress(0.0, f"{name}: starting…")
    plan = ServingPlan(mode=mode, overrides={TASK: replace(settings_for(TASK), **row)} if row else {})
    started = time.perf_counter()
    serving, _ = start_serving(plan, models_dir)
    out: dict = {"settings": row or "the app's own process"}
    port = _free_port()
    demo = launch(
        host="127.0.0.1",
        port=port,
        models_dir=models_dir,
        open_browser=False,
        models={TASK: str(folder)},
        block=False,
        serving=serving,
    )
    try:
        url = f"http://127.0.0.1:{port}/"
        _request(_client(url), photo, folder, device)  # loads the model (and deploys on Ray)
        out["ready_s"] = round(time.perf_counter() - started, 1)
        if serving is not None:
            out["ray_memory_mb"] = _ray_memory_mb()
            out["handle_round_trip_ms"] = _handle_round_trip_ms(serving)
        for j, n in enumerate(clients):
            progress(j / len(clients), f"{name}: {n} concurrent user{'s' if n > 1 else ''}…")
            out[f"{n}_clients"] = _load(url, photo, folder, device, n, runs * (8 if n == 1 else 1))
    finally:
        demo.close()
        if serving is not None:
            serving.shutdown()
    return out


def _client(url: str):
    from gradio_client import Client

    # A user waits up to two minutes (gradio_client's own read timeout is shorter than 32 users' queue).
    return Client(url, verbose=False, httpx_kwargs={"timeout": 120})


def _request(client, photo: Path, folder: Path, device: str):
    from gradio_client import handle_file

    return client.predict(
        handle_file(str(photo)), LABELS, str(folder), "onnx", device, "fp32", "single", "a photo of a {}.", "",
        api_name="/classify",
    )  # fmt: skip


def _load(url, photo, folder, device, users: int, per_user: int) -> dict:
    """`users` gradio_client users sending `per_user` requests each, back to back, all at once."""
    clients = [_client(url) for _ in range(users)]
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    gate = threading.Barrier(users + 1)

    def user(client):
        gate.wait()
        for _ in range(per_user):
            began = time.perf_counter()
            try:
                scores, _, _, badge = _request(client, photo, folder, device)
                ok = isinstance(scores, dict) and "label" in scores
            except Exception as exc:  # noqa: BLE001 - counted as an error, the run goes on
                ok, badge = False, type(exc).__name__
            with lock:
                (latencies.append((time.perf_counter() - began) * 1000) if ok else errors.append(str(badge)[:80]))

    threads = [threading.Thread(target=user, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    gate.wait()
    began = time.perf_counter()
    for t in threads:
        t.join()
    wall = time.perf_counter() - began
    arr = np.asarray(latencies or [float("nan")])
    return {
        "requests": users * per_user,
        "requests_per_s": round(len(latencies) / wall, 2),
        "p50_ms": round(float(np.percentile(arr, 50)), 1),
        "p95_ms": round(float(np.percentile(arr, 95)), 1),
        "errors": len(errors),
        "error_kinds": sorted(set(errors))[:3],
    }


def _handle_round_trip_ms(serving) -> float:
    """p50 of a call that does nothing through a deployment handle: Ray's own cost per request."""
    from studio.services.zero_shot import ZeroShotService

    handle = serving.handle(ZeroShotService)
    samples = []
    for _ in range(30):
        began = time.perf_counter()
        handle.stats.remote().result()
        samples.append((time.perf_counter() - began) * 1000)
    return round(statistics.median(samples), 2)


def _ray_memory_mb() -> dict:
    """Resident memory of Ray's processes on this machine: its own (GCS, raylet, Serve controller, workers idle)
    and the replicas (which hold the model)."""
    own = replicas = 0
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            cmdline = (status.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            rss = next(int(line.split()[1]) for line in status.read_text().splitlines() if line.startswith("VmRSS"))
        except (OSError, StopIteration, ValueError):
            continue
        if "ServeReplica" in cmdline:
            replicas += rss
        elif "ray" in cmdline and any(k in cmdline for k in ("gcs_server", "raylet", "ray::", "default_worker")):
            own += rss
    return {"ray_processes": round(own / 1024), "replicas": round(replicas / 1024)}


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _summary(results: dict, clients: tuple[int, ...]) -> dict:
    """Throughput ratios against in-process at each number of users, Ray's overhead at one user, and the goal."""
    base = results.get("in-process")
    summary: dict = {}
    if base is None:
        return summary
    for name, result in results.items():
        if name == "in-process":
            continue
        summary[name] = {
            f"{n}_clients_throughput_x": ratio(1 / base[f"{n}_clients"]["requests_per_s"], 1 / r["requests_per_s"])
            for n in clients
            if (r := result.get(f"{n}_clients")) and r["requests_per_s"] and base[f"{n}_clients"]["requests_per_s"]
        }
    ray = results.get("ray-1-replica", {})
    if "handle_round_trip_ms" in ray:  # a call that does nothing, through the handle: what Ray adds to each request
        summary["ray_overhead_ms_per_request"] = ray["handle_round_trip_ms"]
        summary["ray_memory_mb"] = ray["ray_memory_mb"]
    if ray.get("1_clients") and 1 in clients:  # the same, end to end (within this machine's noise)
        summary["one_user_p50_ms_ray_minus_in_process"] = round(
            ray["1_clients"]["p50_ms"] - base["1_clients"]["p50_ms"], 1
        )
    batched = [n for n in results if n.endswith("batched")]
    if 8 in clients and batched:
        best = max(batched, key=lambda n: results[n]["8_clients"]["requests_per_s"])
        b, r = base["8_clients"], results[best]["8_clients"]
        summary["goal_8_clients"] = {
            "best_batched": best,
            "throughput_x": ratio(1 / b["requests_per_s"], 1 / r["requests_per_s"]),
            "target_x": TARGET_BATCHED_SPEEDUP_8,
            "p95_ms": r["p95_ms"],
            "in_process_p95_ms": b["p95_ms"],
            "met": r["requests_per_s"] >= TARGET_BATCHED_SPEEDUP_8 * b["requests_per_s"] and r["p95_ms"] <= b["p95_ms"],
        }
    return summary
