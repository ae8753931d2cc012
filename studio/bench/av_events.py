"""`studio bench av-events`: the FULL-SIZE AST and CLAP audio encoders with random weights, ONNX Runtime vs PyTorch.

Compute cost does not depend on weight values, so the timings are those of the real checkpoints; nothing is
downloaded. Reported per model: one window (10.24 s for AST, 10 s for CLAP) at batch 1 on PyTorch, ONNX Runtime fp32
and int8 (dynamic quantization), as latency and as **real-time factor** (seconds of sound heard per second of
compute; also for batches of 4 windows, as long recordings are heard), the ratio of each to PyTorch, the feature
extraction (ours and transformers' extractor), and the real-time factor of the whole step (features + model).
Target on a 2-core CPU: ONNX Runtime at least 10x real time for AST.
"""

from __future__ import annotations

import time

from studio.bench.timing import (
    RANDOM_WEIGHTS,
    build_bench_model,
    export_checked,
    machine,
    ratio,
    scratch_folder,
    time_calls,
)
from studio.progress import Progress, no_progress, scaled

TASK = "av-events"
TARGET_AST_REALTIME = 10.0
CLAP_ID = "laion/clap-htsat-unfused"


def run_bench(
    model: str | None = None, runs: int = 5, device: str = "cpu", int8: bool = True, progress: Progress = no_progress
) -> dict:
    """Runs the benchmark and returns a JSON-able report.

    Args:
        model: One registry hub id to bench (default: both AST and CLAP).
        runs: Timed runs per measurement (a full-size AST window takes seconds on 2 CPU cores; keep this small).
        device: "cpu", "cuda" or "auto" for both engines.
        int8: Also build and time the int8 audio graph.
        progress: Receives fractions and sentences.
    """
    from studio.registry import REGISTRY

    names = [model] if model else [r.hub_id for r in REGISTRY.for_task(TASK)]
    report: dict = {"task": TASK, "weights": RANDOM_WEIGHTS, "models": {}}
    for i, name in enumerate(names):
        report["models"][name] = _bench_one(
            name, runs, device, int8, scaled(progress, i / len(names), (i + 1) / len(names))
        )
        report.setdefault("machine", report["models"][name].pop("machine"))
    ast = next((m for m in report["models"].values() if m["family"] == "ast"), None)
    if ast is not None:
        best = max(ast["realtime_factor"][k] for k in ast["realtime_factor"] if k.startswith("onnx"))
        report["targets"] = {
            f"ast_onnx_at_least_{TARGET_AST_REALTIME:g}x_realtime": {
                "value": ast["realtime_factor"]["onnx_fp32"],
                "met": ast["realtime_factor"]["onnx_fp32"] >= TARGET_AST_REALTIME,
                "best_onnx_variant": best,
                "best_met": best >= TARGET_AST_REALTIME,
            }
        }
    progress(1.0, "Done")
    return report


def _bench_one(name: str, runs: int, device: str, int8: bool, progress: Progress) -> dict:
    from studio.backends.onnx import OnnxBackend
    from studio.backends.pytorch import TorchBackend
    from studio.export.quantize import cosine_rows, quantize_graph
    from studio.media.synthetic_sounds import synthetic_sounds

    progress(0.02, f"Building the full-size {name} with random weights…")
    bench = build_bench_model(TASK, name)
    family = bench.spec.family
    features, reference = _features(family, bench.architecture)
    graph = bench.graphs["audio_classifier" if family == "ast" else "audio_encoder"]
    module = graph.build(bench.model).eval()
    window_s = features.window_samples / features.sampling_rate
    sounds = synthetic_sounds(features.sampling_rate, window_s)
    feature_input = graph.input_names[0]
    two = {feature_input: features.batch(sounds[:2])}
    one = {feature_input: features.batch(sounds[2:3])}
    out: dict = {
        "family": family,
        "window_s": round(window_s, 3),
        "input_shape": list(one[feature_input].shape),
        "machine": machine(device, bench.threads),
    }
    with scratch_folder() as work:
        started = time.perf_counter()
        paths, parity = export_checked(bench.graphs, {graph.name: (module, two)}, work, scaled(progress, 0.1, 0.3))
        path = paths[graph.name]
        out["export_s"] = round(time.perf_counter() - started, 1)
        out["parity_max_abs_diff"] = parity[graph.name]
        engines = {
            "torch": TorchBackend(module, graph.input_names, graph.output_names, device=device),
            "onnx_fp32": OnnxBackend(path, device=device),
        }
        if int8:
            progress(0.3, "Quantizing to int8…")
            quantize_graph(path, work / f"{graph.name}.int8.onnx", graph.int8_weights_only)
            engines["onnx_int8"] = OnnxBackend(work / f"{graph.name}.int8.onnx", device=device, variant="int8")
            first = graph.output_names[0]
            fp32, q = engines["onnx_fp32"].run(two)[first], engines["onnx_int8"].run(two)[first]
            out["int8_cosine_to_fp32_min"] = round(float(cosine_rows(fp32, q).min()), 5)
        out["runtime"] = {k: e.runtime.label for k, e in engines.items()}
        latency, batched = {}, {}
        four = {feature_input: features.batch(sounds)}  # the task hears long recordings 4 windows per call
        for i, (key, engine) in enumerate(engines.items()):
            progress(0.4 + 0.5 * i / len(engines), f"Timing {key} on one {window_s:.1f}-second window…")
            latency[key] = time_calls(lambda e=engine: e.run(one), runs, warmup=1)
            t = time_calls(lambda e=engine: e.run(four), max(2, runs // 2), warmup=1)["p50_ms"]
            batched[key] = round(4 * window_s * 1000 / t, 2)
    out["window_latency_ms"] = latency
    out["realtime_factor_batch4"] = batched
    out["realtime_factor"] = {k: round(window_s * 1000 / v["p50_ms"], 2) for k, v in latency.items()}
    out["speedup_vs_torch"] = {
        k: ratio(latency["torch"]["p50_ms"], v["p50_ms"]) for k, v in latency.items() if k != "torch"
    }
    progress(0.92, "Timing feature extraction…")
    ours = time_calls(lambda: features(sounds[0]), max(3, runs), warmup=1)["p50_ms"]
    theirs = time_calls(lambda: reference(sounds[0]), max(3, runs), warmup=1)["p50_ms"]
    out["features_ms"] = {"ours_numpy": ours, "transformers_extractor": theirs}
    out["realtime_factor_with_features"] = {
        k: round(window_s * 1000 / (v["p50_ms"] + ours), 2) for k, v in latency.items()
    }
    return out


def _features(family: str, architecture: dict):
    """Our feature extraction for the full-size model's input, and transformers' extractor on the same settings."""
    from studio.media.sound_features import AstFeatures, ClapFeatures

    if family == "ast":
        from transformers import ASTFeatureExtractor

        ours = AstFeatures(num_mel_bins=architecture["num_mel_bins"], max_length=architecture["max_length"])
        theirs = ASTFeatureExtractor(num_mel_bins=ours.num_mel_bins, max_length=ours.max_length)
        return ours, lambda x: theirs(x, sampling_rate=ours.sampling_rate, return_tensors="np")["input_values"]
    from transformers import ClapFeatureExtractor

    # laion/clap-htsat-unfused's settings: 64 mel bins from 50 Hz to 14 kHz, one view (rand_trunc), repeat-padded.
    settings = dict(feature_size=architecture["audio_config"]["num_mel_bins"], frequency_min=50, frequency_max=14000)
    ours = ClapFeatures(truncation="rand_trunc", padding="repeatpad", **settings)
    theirs = ClapFeatureExtractor(truncation="rand_trunc", padding="repeatpad", **settings)
    return ours, lambda x: theirs(x, sampling_rate=ours.sampling_rate, return_tensors="np")["input_features"]
