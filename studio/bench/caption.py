"""`studio bench caption`: full-size BLIP-base with random weights; ONNX Runtime with our cached decoding loop
against PyTorch `generate()`, in one run.

Both decode exactly 20 new tokens (the end token is suppressed until then), so the comparison does not depend on
what random weights happen to say. Reported: the image encoder, the 20-token decode, and the whole caption.
"""

from __future__ import annotations

import numpy as np

from studio.bench.timing import build_bench_model, export_checked, ratio, report_header, scratch_folder, time_calls
from studio.progress import Progress, no_progress, scaled

TASK = "caption"
NEW_TOKENS = 20


def run_bench(model: str | None = None, runs: int = 10, device: str = "cpu", progress: Progress = no_progress) -> dict:
    """Runs the benchmark and returns a JSON-able report.

    Args:
        model: Registry hub id whose architecture to build (default: the task's default model).
        runs: Timed runs per measurement (a caption takes about a second on 2 CPU cores; keep this small).
        device: "cpu", "cuda" or "auto" for both engines.
        progress: Receives fractions and sentences.
    """
    import torch

    from studio.backends.onnx import OnnxBackend
    from studio.backends.pytorch import torch_device
    from studio.families.blip import BlipDecoderSteps
    from studio.generation import GenerationSettings, generate

    progress(0.02, "Building the full-size model with random weights…")
    bench = build_bench_model(TASK, model)
    spec, graphs, arch, threads, blip = bench.spec, bench.graphs, bench.architecture, bench.threads, bench.model
    family = bench.family
    size = arch["vision_config"]["image_size"]
    rng = np.random.default_rng(0)
    meta = family.metadata(blip)
    encoder = graphs["image_encoder"].build(blip).eval()
    decoder = graphs["text_decoder"].build(blip).eval()
    pixels_2 = rng.standard_normal((2, 3, size, size), dtype=np.float32)
    with torch.inference_mode():
        _, cross_k, cross_v = encoder(torch.from_numpy(pixels_2))
        empty = torch.from_numpy(family.empty_cache(meta, 2))
        ids = torch.tensor([[meta["bos_token_id"], 1037, 3861]] * 2)
        _, self_k, self_v = decoder(ids, empty, empty, cross_k, cross_v)
    decoder_example = {
        "input_ids": np.array([[1997], [1037]], dtype=np.int64),
        "past_self_k": self_k.numpy(),
        "past_self_v": self_v.numpy(),
        "cross_k": cross_k.numpy(),
        "cross_v": cross_v.numpy(),
    }
    report: dict = {**report_header(TASK, spec.hub_id, device, threads), "new_tokens": NEW_TOKENS}
    with scratch_folder() as work:
        examples = {"image_encoder": (encoder, {"pixel_values": pixels_2}), "text_decoder": (decoder, decoder_example)}
        paths, report["parity_max_abs_diff"] = export_checked(graphs, examples, work, scaled(progress, 0.1, 0.5))
        ort_encoder = OnnxBackend(paths["image_encoder"], device=device)
        ort_decoder = OnnxBackend(paths["text_decoder"], device=device)
        report["runtime"] = {"onnx": ort_encoder.runtime.label}
        one = {"pixel_values": rng.standard_normal((1, 3, size, size), dtype=np.float32)}
        fixed = GenerationSettings(max_new_tokens=NEW_TOKENS, min_new_tokens=NEW_TOKENS)

        def ort_decode(encoded):
            steps = BlipDecoderSteps(ort_decoder, encoded["cross_k"], encoded["cross_v"], meta)
            out = generate(steps, [meta["bos_token_id"]], fixed, meta["eos_token_id"], meta["pad_token_id"])
            assert len(out.token_ids) == NEW_TOKENS
            return out

        progress(0.5, "Timing ONNX Runtime…")
        encoded = ort_encoder.run(one)
        onnx = {
            "image_encoder": time_calls(lambda: ort_encoder.run(one), runs, warmup=1),
            "decode_20_tokens": time_calls(lambda: ort_decode(encoded), runs, warmup=1),
            "caption": time_calls(lambda: ort_decode(ort_encoder.run(one)), runs, warmup=1),
        }

    progress(0.75, "Timing PyTorch generate()…")
    target, _ = torch_device(device)
    blip = blip.to(target)
    pixels = torch.from_numpy(one["pixel_values"]).to(target)

    def torch_generate():
        with torch.inference_mode():
            out = blip.generate(
                pixel_values=pixels, max_new_tokens=NEW_TOKENS, min_new_tokens=NEW_TOKENS, do_sample=False
            )
        assert out.shape[1] == NEW_TOKENS + 1

    def torch_encoder():
        with torch.inference_mode():
            blip.vision_model(pixel_values=pixels)

    pytorch = {
        "image_encoder": time_calls(torch_encoder, runs, warmup=1),
        "caption": time_calls(torch_generate, runs, warmup=1),
    }
    pytorch["decode_20_tokens_estimate"] = {
        "p50_ms": round(pytorch["caption"]["p50_ms"] - pytorch["image_encoder"]["p50_ms"], 2),
        "note": "generate() minus its image encoder",
    }
    report["onnx_runtime"] = onnx
    report["pytorch"] = pytorch
    speedup = ratio(pytorch["caption"]["p50_ms"], onnx["caption"]["p50_ms"])
    report["speedup_vs_torch"] = {
        "caption": speedup,
        "image_encoder": ratio(pytorch["image_encoder"]["p50_ms"], onnx["image_encoder"]["p50_ms"]),
        "decode_20_tokens": ratio(pytorch["decode_20_tokens_estimate"]["p50_ms"], onnx["decode_20_tokens"]["p50_ms"]),
    }
    report["targets"] = {"onnx_at_least_as_fast_as_torch_generate": {"value": speedup, "met": speedup >= 1.0}}
    progress(1.0, "Done")
    return report
