"""`studio bench vlm`: full-size SmolVLM-256M with random weights; our ONNX Runtime graphs and decoding loop against
PyTorch `generate()`, in one run.

Both decode exactly `NEW_TOKENS` new tokens (the end tokens are suppressed until then), from the same prompt and the
same picture, so the comparison does not depend on what random weights happen to say. Reported: the image tokens (the
vision encoder + connector for the global view, and for a 4:3 photo split into tiles as the processor does), the time
to the first token from a photo, tokens per second after it, the whole answer, and int8 weight-only decoding.
"""

from __future__ import annotations

import time

import numpy as np

from studio.bench.timing import build_bench_model, export_checked, ratio, report_header, scratch_folder, time_calls
from studio.progress import Progress, no_progress, scaled

TASK = "describe"
NEW_TOKENS = 32
# A first spoken sentence of a description is about this many tokens ("The image shows a cat lying on a sofa.").
FIRST_SENTENCE_TOKENS = 11
PHOTO_SIZE = (640, 480)  # a camera frame: 4 x 3 tiles + the global view when split


def run_bench(
    model: str | None = None, runs: int = 3, device: str = "cpu", int8: bool = True, progress: Progress = no_progress
) -> dict:
    """Runs the benchmark and returns a JSON-able report.

    Args:
        model: Registry hub id whose architecture to build (default: SmolVLM-256M-Instruct).
        runs: Timed runs per measurement (an answer takes seconds on 2 CPU cores; keep this small).
        device: "cpu", "cuda" or "auto" for both engines.
        int8: Also time the int8 weight-only decoder.
        progress: Receives fractions and sentences.
    """
    import torch
    from PIL import Image

    from studio.backends.onnx import OnnxBackend
    from studio.backends.pytorch import torch_device
    from studio.families.smolvlm import SmolVLMDecoderSteps, SmolVLMPreprocessing, empty_cache
    from studio.generation import GenerationSettings, generate

    progress(0.02, "Building the full-size model with random weights…")
    bench = build_bench_model(TASK, model)
    spec, graphs, family, vlm = bench.spec, bench.graphs, bench.family, bench.model
    meta = family.metadata(vlm)
    meta["eos_token_ids"] = [2]
    tile = meta["tile"]
    rng = np.random.default_rng(0)
    photo = Image.fromarray(rng.integers(0, 256, (PHOTO_SIZE[1], PHOTO_SIZE[0], 3), dtype=np.uint8))
    split = SmolVLMPreprocessing(longest_edge=4 * tile, tile=tile, split=True)
    whole = SmolVLMPreprocessing(longest_edge=4 * tile, tile=tile, split=False)
    one_tile, _, _ = whole(photo)
    tiles, rows, cols = split(photo)
    # A chat prompt of the global view: SmolVLM's framing tokens with random text ids around the image tokens.
    image_ids = [meta["image_token_id"]] * meta["image_seq_len"]
    prompt = [1, 11, 12, 13, 14, 49189, 49188, *image_ids, 49189, *rng.integers(100, 40000, 12).tolist(), 15, 16]
    vision = graphs["vision_encoder"].build(vlm).eval()
    embed = graphs["embed_tokens"].build(vlm).eval()
    decoder = graphs["decoder"].build(vlm).eval()
    with torch.inference_mode():
        embeds = embed(torch.tensor([prompt[:40]])).numpy()
        empty = torch.from_numpy(empty_cache(meta))
        _, past_k, past_v = decoder(torch.from_numpy(embeds[:, :36]), empty, empty)
    examples = {
        "vision_encoder": (vision, {"pixel_values": one_tile}),
        "embed_tokens": (embed, {"input_ids": np.asarray([prompt[:40]], dtype=np.int64)}),
        "decoder": (
            decoder,
            {"inputs_embeds": embeds[:, 36:].copy(), "past_k": past_k.numpy(), "past_v": past_v.numpy()},
        ),
    }
    report: dict = {
        **report_header(TASK, spec.hub_id, device, bench.threads),
        "new_tokens": NEW_TOKENS,
        "prompt_tokens": len(prompt),
        "photo": {"size": list(PHOTO_SIZE), "tiles_when_split": int(tiles.shape[0]), "rows": rows, "cols": cols},
    }
    fixed = GenerationSettings(max_new_tokens=NEW_TOKENS, min_new_tokens=NEW_TOKENS)
    with scratch_folder() as work:
        paths, report["parity_max_abs_diff"] = export_checked(graphs, examples, work, scaled(progress, 0.05, 0.45))
        ort = {name: OnnxBackend(path, device=device) for name, path in paths.items()}
        report["runtime"] = {"onnx": ort["decoder"].runtime.label}

        def answer(decoder_graph, pixel_values, until_first: bool = False):
            started = time.perf_counter()
            features = ort["vision_encoder"].run({"pixel_values": pixel_values})["image_features"]
            steps = SmolVLMDecoderSteps(ort["embed_tokens"], decoder_graph, features, meta)
            times = []

            def on_token(token, logprob):
                times.append((time.perf_counter() - started) * 1000)
                return not until_first

            out = generate(steps, prompt, fixed, meta["eos_token_ids"], 0, on_token=on_token)
            assert until_first or len(out.token_ids) == NEW_TOKENS
            return times

        def decode_rate(decoder_graph):
            times = answer(decoder_graph, one_tile)
            return (len(times) - 1) / ((times[-1] - times[0]) / 1000)

        progress(0.5, "Timing ONNX Runtime…")
        image_tokens = {
            "global_view_1_tile": time_calls(lambda: ort["vision_encoder"].run({"pixel_values": one_tile}), runs, 1),
            f"split_{tiles.shape[0]}_tiles": time_calls(
                lambda: ort["vision_encoder"].run({"pixel_values": tiles}), max(1, runs // 2), 1
            ),
        }
        preprocess = time_calls(lambda: whole(photo), runs, 1)
        first_token = time_calls(lambda: answer(ort["decoder"], one_tile, until_first=True), runs, 1)
        rates = [decode_rate(ort["decoder"]) for _ in range(runs)]
        onnx = {
            "image_tokens": image_tokens,
            "preprocess_global_view": preprocess,
            "time_to_first_token_global_view": first_token,
            "tokens_per_s": round(float(np.median(rates)), 2),
            "answer_32_tokens": time_calls(lambda: answer(ort["decoder"], one_tile), runs, 0),
        }
        per_token_ms = 1000 / onnx["tokens_per_s"]
        onnx["first_sentence_estimate_ms"] = round(
            preprocess["p50_ms"] + first_token["p50_ms"] + (FIRST_SENTENCE_TOKENS - 1) * per_token_ms, 1
        )
        if int8:
            from studio.export.quantize import quantize_graph

            progress(0.7, "Quantizing the language model's MatMuls to int8…")
            quantize_graph(paths["decoder"], work / "decoder.int8.onnx", weights_only=True)
            int8_decoder = OnnxBackend(work / "decoder.int8.onnx", device=device, variant="int8")
            onnx["int8_decoder"] = {
                "tokens_per_s": round(float(np.median([decode_rate(int8_decoder) for _ in range(runs)])), 2),
                "answer_32_tokens": time_calls(lambda: answer(int8_decoder, one_tile), runs, 0),
            }

    progress(0.8, "Timing PyTorch generate()…")
    target, _ = torch_device(device)
    vlm = vlm.to(target)
    ids = torch.tensor([prompt], device=target)
    pixels = torch.from_numpy(one_tile)[None].to(target)

    def torch_generate():
        with torch.inference_mode():
            out = vlm.generate(
                input_ids=ids,
                pixel_values=pixels,
                max_new_tokens=NEW_TOKENS,
                min_new_tokens=NEW_TOKENS,
                do_sample=False,
                eos_token_id=meta["eos_token_ids"],
            )
        assert out.shape[1] == len(prompt) + NEW_TOKENS

    def torch_first_token():
        with torch.inference_mode():
            vlm.generate(input_ids=ids, pixel_values=pixels, max_new_tokens=1, do_sample=False)

    def torch_image_tokens():
        with torch.inference_mode():
            vlm.get_image_features(pixels)

    pytorch = {
        "image_tokens_global_view_1_tile": time_calls(torch_image_tokens, runs, 1),
        "time_to_first_token_global_view": time_calls(torch_first_token, runs, 1),
        "answer_32_tokens": time_calls(torch_generate, runs, 1),
    }
    after_first = pytorch["answer_32_tokens"]["p50_ms"] - pytorch["time_to_first_token_global_view"]["p50_ms"]
    pytorch["tokens_per_s"] = round((NEW_TOKENS - 1) / (after_first / 1000), 2) if after_first > 0 else None
    report["onnx_runtime"] = onnx
    report["pytorch"] = pytorch
    speedup = ratio(pytorch["answer_32_tokens"]["p50_ms"], onnx["answer_32_tokens"]["p50_ms"])
    report["speedup_vs_torch"] = {
        "answer_32_tokens": speedup,
        "image_tokens": ratio(
            pytorch["image_tokens_global_view_1_tile"]["p50_ms"], image_tokens["global_view_1_tile"]["p50_ms"]
        ),
        "time_to_first_token": ratio(pytorch["time_to_first_token_global_view"]["p50_ms"], first_token["p50_ms"]),
        "tokens_per_s": ratio(onnx["tokens_per_s"], pytorch["tokens_per_s"] or float("inf")),
    }
    if int8:
        report["speedup_vs_torch"]["answer_32_tokens_int8_decoder"] = ratio(
            pytorch["answer_32_tokens"]["p50_ms"], onnx["int8_decoder"]["answer_32_tokens"]["p50_ms"]
        )
    report["targets"] = {
        "onnx_at_least_1.5x_torch_generate": {"value": speedup, "met": speedup >= 1.5},
        "first_sentence_under_1500_ms": {
            "value": onnx["first_sentence_estimate_ms"],
            "met": onnx["first_sentence_estimate_ms"] < 1500,
            "note": f"picture prepared + first token + {FIRST_SENTENCE_TOKENS - 1} more tokens (global view)",
        },
    }
    progress(1.0, "Done")
    return report
