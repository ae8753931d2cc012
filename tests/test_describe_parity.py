"""SmolVLM against transformers on the tiny model with real photos: our tiling equals its image processor's pixel
values, our prompt its processor's expanded chat text, our vision graph `get_image_features`, and our greedy decoding
(ONNX Runtime and PyTorch, one turn and a conversation) `generate()` token for token. Plus the listener-first parts:
sentences handed out as soon as they are complete, people's looks left out unless asked, stop."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from studio.services.base import LoadedModels, Runtime

QUESTIONS = ("What is in the picture?", "What colour is it?")


@pytest.fixture(scope="module")
def tasks(tiny_smolvlm_dir, describe_models_dir):
    from studio.tasks.describe import DescribeTask

    return {
        backend: DescribeTask.load(str(tiny_smolvlm_dir), describe_models_dir, backend=backend, device="cpu")
        for backend in ("onnx", "torch")
    }


@pytest.mark.parametrize("name", ["astronaut", "chelsea", "coffee"])
@pytest.mark.parametrize("split", [True, False])
def test_tiles_equal_the_image_processor(tiny_smolvlm_dir, photos, name, split):
    from transformers.models.smolvlm.image_processing_pil_smolvlm import SmolVLMImageProcessorPil

    from studio.families.smolvlm import SmolVLMPreprocessing

    ours, rows, cols = SmolVLMPreprocessing.from_dir(tiny_smolvlm_dir, split=split)(photos[name])
    reference = SmolVLMImageProcessorPil.from_pretrained(str(tiny_smolvlm_dir))
    out = reference(images=[[photos[name]]], do_image_splitting=split, return_row_col_info=True, return_tensors="np")
    assert (rows, cols) == (out["rows"][0][0], out["cols"][0][0])
    assert ours.shape == out["pixel_values"][0].shape
    np.testing.assert_allclose(ours, out["pixel_values"][0], atol=1e-6)
    assert (rows, cols) != (0, 0) if split else (rows, cols) == (0, 0)


def test_prompt_equals_the_processors(tasks, tiny_smolvlm_dir, photos):
    """The chat template and the image's expansion, as transformers' SmolVLM processor builds them (its functions; the
    processor object itself needs torchvision and num2words for its video half)."""
    from transformers import AutoTokenizer
    from transformers.models.smolvlm.processing_smolvlm import DEFAULT_CHAT_TEMPLATE, get_image_prompt_string

    from studio.tasks.describe import conversation

    task = tasks["torch"]
    encoded = task.encode(photos["chelsea"])
    history = [{"question": "What is this?", "answer": "A cat."}]
    messages = conversation(history, QUESTIONS[1], describe_people=False)
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_smolvlm_dir))
    text = tokenizer.apply_chat_template(
        messages, chat_template=DEFAULT_CHAT_TEMPLATE, tokenize=False, add_generation_prompt=True
    )
    seq = task.meta["image_seq_len"]
    expanded = text.replace(
        "<image>",
        get_image_prompt_string(
            encoded.rows, encoded.cols, seq, "<fake_token_around_image>", "<image>", "<global-img>"
        ),
        1,
    )
    ids = task.prompt(encoded, messages)
    assert ids == tokenizer(expanded)["input_ids"]
    assert ids.count(task.meta["image_token_id"]) == encoded.tiles * seq
    assert text.endswith("Assistant:") and "Assistant: A cat.<end_of_utterance>" in text


@pytest.mark.parametrize("backend", ["onnx", "torch"])
def test_image_features_equal_get_image_features(tasks, smolvlm_reference, photos, backend):
    import torch

    from studio.families.smolvlm import SmolVLMPreprocessing

    task = tasks[backend]
    tiles, _, _ = SmolVLMPreprocessing.from_dir(task.files)(photos["astronaut"])
    ours = task.graphs.graphs["vision_encoder"].run({"pixel_values": tiles})["image_features"]
    with torch.inference_mode():
        ref = smolvlm_reference.model.get_image_features(torch.from_numpy(tiles)[None]).pooler_output[0]
    np.testing.assert_allclose(ours.reshape(ref.shape), ref.numpy(), atol=2e-4, rtol=1e-3)


@pytest.mark.parametrize("backend", ["onnx", "torch"])
@pytest.mark.parametrize("name", ["astronaut", "coffee"])
def test_greedy_tokens_equal_generate_single_and_multi_turn(tasks, smolvlm_reference, photos, backend, name):
    from studio.families.smolvlm import SmolVLMPreprocessing
    from studio.tasks.describe import DETAIL_PROMPT, conversation

    task = tasks[backend]
    tiles, _, _ = SmolVLMPreprocessing.from_dir(task.files)(photos[name])
    encoded = task.encode(photos[name])
    history = []
    for request in (DETAIL_PROMPT, *QUESTIONS):
        messages = conversation(history, request, describe_people=False)
        result = task.respond(encoded, messages, max_new_tokens=24)
        expected = smolvlm_reference(tiles, task.prompt(encoded, messages), 24)
        assert result.token_ids == expected, (backend, name, request)
        history.append({"question": request, "answer": result.model_text})
    assert len({tuple(m["content"][0].items()) for m in messages if m["role"] == "user"}) == 3  # 3 user turns


def test_sentences_are_handed_out_as_soon_as_they_end(tasks):
    from studio.tasks.describe import _SentenceStream

    task = tasks["torch"]
    said = []
    stream = _SentenceStream(task, describe_people=False, started=0.0, on_sentence=said.append)
    ids = task.tokenizer("A young woman holds a cat. It is grey and white.")["input_ids"]
    tokens_before_second = len(task.tokenizer("A young woman holds a cat. It")["input_ids"])
    for i, token in enumerate(ids):
        stream.add(token, np.log(0.9))
        if i + 1 < tokens_before_second:
            assert not said
    assert [s.model_text for s in said] == ["A young woman holds a cat."]  # said once "It" began
    stream.finish()
    assert [s.text for s in said] == ["A woman holds a cat.", "It is grey and white."]  # looks left out
    assert all(s.certainty == "sure" and abs(s.confidence - 0.9) < 1e-6 for s in said)


def test_unsure_sentences_are_hedged(tasks):
    from studio.tasks.describe import _SentenceStream

    task = tasks["torch"]
    stream = _SentenceStream(task, describe_people=True, started=0.0, on_sentence=None)
    for token in task.tokenizer("The cat sleeps.")["input_ids"]:
        stream.add(token, np.log(0.2))
    stream.finish()
    assert stream.sentences[0].text == "Probably the cat sleeps."


def test_people_rule_in_the_prompt_unless_asked():
    from studio.tasks.describe import PEOPLE_RULE, asks_about_looks, conversation

    assert PEOPLE_RULE in conversation([], "What is on the table?", False)[0]["content"][1]["text"]
    assert PEOPLE_RULE not in conversation([], "How old is the man?", False)[0]["content"][1]["text"]
    assert PEOPLE_RULE not in conversation([], "What is on the table?", True)[0]["content"][1]["text"]
    assert asks_about_looks("What is she wearing?") and not asks_about_looks("Is the door open?")


def test_stop_keeps_what_was_said(tasks, photos):
    from studio.tasks.describe import DETAIL_PROMPT, conversation

    task = tasks["onnx"]
    count = []
    result = task.respond(
        task.encode(photos["chelsea"]),
        conversation([], DETAIL_PROMPT, False),
        max_new_tokens=30,
        should_stop=lambda: count.append(1) or len(count) >= 3,
    )
    assert result.stopped and len(result.token_ids) == 3


def test_service_streams_then_reports(describe_models_dir, tiny_smolvlm_dir, photos):
    from studio.services.describe import DescribeService

    service = DescribeService(LoadedModels(describe_models_dir))
    runtime = Runtime(model=str(tiny_smolvlm_dir), backend="onnx", device="cpu")
    events = list(service.stream(photos["coffee"], detail=True, max_new_tokens=16, runtime=runtime))
    done = events[-1]["result"]
    assert events[-1]["event"] == "done" and done["backend"] == "onnx"
    assert [e["sentence"] for e in events[:-1]] == done["sentences"]
    assert done["tokens"] == 16 or done["tokens"] < 16 and not done["stopped"]
    assert 0 < done["time_to_first_token_ms"] <= done["latency_ms"]
    follow_up = service(photos["coffee"], question="Is it hot?", history=done["history"], runtime=runtime)
    assert follow_up["picture_cached"] and follow_up["turn"] == 2 and len(follow_up["history"]) == 2
    stop = threading.Event()
    stop.set()  # Stop pressed: generation ends after the token being made, and what was said is kept
    stopped = service(photos["coffee"], question="Is it hot?", runtime=runtime, stop=stop)
    assert stopped["stopped"] and stopped["tokens"] == 1


def test_int8_language_model_is_kept_only_if_greedy_words_stay_the_same(describe_models_dir, tmp_path):
    """int8 weight-only MatMuls of the decoder: saved when every example photo's greedy tokens equal fp32's, refused
    (nothing left behind, the export stays fp32) when one differs; the decision is checked independently here."""
    import json
    import shutil

    from studio.errors import ExportError
    from studio.export.exporter import parity_photos
    from studio.export.quantize import quantize_export, quantize_graph
    from studio.families.smolvlm import check_int8

    export = next((describe_models_dir / "describe").iterdir())
    copy = shutil.copytree(export, tmp_path / "export")
    quantize_graph(copy / "decoder.onnx", tmp_path / "decoder.int8.onnx", weights_only=True)
    try:
        check_int8(copy, {"decoder": tmp_path / "decoder.int8.onnx"}, parity_photos())
        identical = True
    except ExportError:
        identical = False
    try:
        entry = quantize_export(copy)
    except ExportError as exc:
        assert not identical and "not saved" in str(exc)
        assert not (copy / "decoder.int8.onnx").exists()
        assert "int8" not in json.loads((copy / "manifest.json").read_text()).get("variants", {})
    else:
        assert identical and entry["greedy_identical_on_photos"] == len(parity_photos())
