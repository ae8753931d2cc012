"""Visual question answering: VqaTask (ONNX and PyTorch) says what transformers says on the same tiny random weights.

BLIP-VQA writes its answer token by token: our decoding loop must reproduce `BlipForQuestionAnswering.generate()`
token for token, and the score must be the geometric mean of those tokens' probabilities under the model. ViLT
classifies into a fixed answer list: our top answers and scores must be the sigmoid/top-k of the logits that
`ViltForQuestionAnswering` gives for `ViltProcessor`'s inputs (the visual-question-answering pipeline's scoring).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import studio.tasks.vqa as vqa_module
from studio.tasks.vqa import MAX_QUESTION_CHARS, BadQuestionError, VqaTask, clean_question
from tests.helpers import assert_plain_sentence, pipeline_top_answers
from tests.test_ask_vilt import QUESTIONS as VILT_QUESTIONS

BLIP_QUESTIONS = (
    "what color is the cup?",
    "how many cats are there?",
    "is this a person in space?",
    "what is on the table?",
)
MAX_NEW_TOKENS = 10  # VqaTask's ANSWER_SETTINGS
DEC = 30522  # BLIP's decoder start token ([DEC]), which generate() puts first
TOLERANCE = 1e-4


def long_question(length: int) -> str:
    """A real question of exactly `length` characters, longer in tokens than either tiny model's text positions."""
    words = "is there " + " and ".join(["a cat", "a dog", "a cup"] * (length // 10))
    return (words[: length - 1].rstrip() + "?").ljust(length, "?")


# Fixtures ---------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=["onnx", "torch"])
def blip_task(request, tiny_blip_vqa_dir, vqa_exports_dir) -> VqaTask:
    return VqaTask.load(str(tiny_blip_vqa_dir), vqa_exports_dir, backend=request.param, device="cpu")


@pytest.fixture(scope="module", params=["onnx", "torch"])
def vilt_task(request, tiny_vilt_dir, vqa_exports_dir) -> VqaTask:
    return VqaTask.load(str(tiny_vilt_dir), vqa_exports_dir, backend=request.param, device="cpu")


@pytest.fixture(scope="module")
def blip_reference(tiny_blip_vqa_dir):
    """transformers on the tiny BLIP-VQA: answer_ids(photo, question) -> generated ids without [DEC] (cached)."""
    from transformers import BlipForQuestionAnswering, BlipProcessor

    model = BlipForQuestionAnswering.from_pretrained(str(tiny_blip_vqa_dir)).eval()
    processor = BlipProcessor.from_pretrained(str(tiny_blip_vqa_dir))
    cache = {}

    def answer_ids(photo, question, **processor_kwargs):
        key = (id(photo), question, tuple(sorted(processor_kwargs.items())))
        if key not in cache:
            inputs = processor(images=photo, text=question, return_tensors="pt", **processor_kwargs)
            with torch.inference_mode():
                out = model.generate(**inputs, max_new_tokens=MAX_NEW_TOKENS)
            assert out[0, 0].item() == DEC, out
            cache[key] = out[0, 1:].tolist()
        return cache[key]

    answer_ids.model = model
    answer_ids.processor = processor
    return answer_ids


@pytest.fixture(scope="module")
def vilt_reference(vilt_logits):
    """transformers on the tiny ViLT: top(photo, question, **processor_kwargs) -> the pipeline's top-5 answers."""

    def top(photo, question, **processor_kwargs):
        return pipeline_top_answers(vilt_logits.model, vilt_logits(photo, question, **processor_kwargs))

    return top


@pytest.fixture
def generated(monkeypatch) -> list:
    """The GenerationResult of every answer VqaTask decodes during the test (a spy on its generation loop)."""
    results = []
    real = vqa_module.generate

    def spy(*args, **kwargs):
        result = real(*args, **kwargs)
        results.append(result)
        return result

    monkeypatch.setattr(vqa_module, "generate", spy)
    return results


def assert_blip_answer(result, expected_ids, generated, tokenizer, where) -> None:
    """A BLIP VqaResult carries exactly the answer generate() wrote, decoded as the tokenizer decodes it."""
    assert generated, "VqaTask did not run the generation loop"
    assert generated[-1].token_ids == expected_ids, where
    assert len(result.answers) == 1, where
    expected_text = tokenizer.decode(expected_ids, skip_special_tokens=True).strip()
    assert result.answers[0]["answer"] == (expected_text or "(no answer)"), where
    assert result.answers[0]["answer"] in result.text, where


# BLIP-VQA -------------------------------------------------------------------------------------------------------


def test_tiny_blip_vqa_answers_depend_on_the_photo_and_the_question(blip_reference, photos):
    """Agreeing with generate() proves the right photo and question reached the model only if they change answers."""
    answers = {(name, q): tuple(blip_reference(photo, q)) for name, photo in photos.items() for q in BLIP_QUESTIONS}
    by_photo = [len({answers[name, q] for name in photos}) for q in BLIP_QUESTIONS]
    by_question = [len({answers[name, q] for q in BLIP_QUESTIONS}) for name in photos]
    assert max(by_photo) > 1, f"the tiny BLIP-VQA gives every photo the same answer: {answers}"
    assert max(by_question) > 1, f"the tiny BLIP-VQA gives every question the same answer: {answers}"


def test_blip_answers_equal_generate(blip_task, blip_reference, photos, generated):
    tokenizer = blip_reference.processor.tokenizer
    for name, photo in photos.items():
        for question in BLIP_QUESTIONS:
            result = blip_task(photo, question)
            where = f"{blip_task.runtime.engine}, {name}, {question!r}"
            assert_blip_answer(result, blip_reference(photo, question), generated, tokenizer, where)
            assert result.question == question


def test_blip_score_is_the_geometric_mean_token_probability(blip_task, blip_reference, photos, generated):
    model, processor = blip_reference.model, blip_reference.processor
    eos = model.config.text_config.sep_token_id
    for name, photo in photos.items():
        question = BLIP_QUESTIONS[1]
        result = blip_task(photo, question)
        ids = blip_reference(photo, question)
        assert generated[-1].token_ids == ids
        inputs = processor(images=photo, text=question, return_tensors="pt")
        prompt = torch.tensor([[DEC, *ids]])
        with torch.inference_mode():
            image = model.vision_model(pixel_values=inputs["pixel_values"]).last_hidden_state
            asked = model.text_encoder(
                input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"], encoder_hidden_states=image
            ).last_hidden_state
            logits = model.text_decoder(input_ids=prompt, encoder_hidden_states=asked).logits[0, :-1]
        logprobs = torch.log_softmax(logits, -1).gather(1, prompt[0, 1:, None])[:, 0].numpy()
        if ids[-1] == eos:  # the end token says "done", not what the answer is
            logprobs = logprobs[:-1]
        expected = float(np.exp(logprobs.mean()))
        assert result.answers[0]["score"] == pytest.approx(expected, rel=1e-4), (blip_task.runtime.engine, name)
        assert 0.0 < result.answers[0]["score"] <= 1.0


# ViLT ------------------------------------------------------------------------------------------------------------


def test_vilt_top_answers_equal_the_pipeline_scoring(vilt_task, vilt_reference, photos):
    rankings = set()
    for name, photo in photos.items():
        for question in VILT_QUESTIONS:
            result = vilt_task(photo, question)
            expected = vilt_reference(photo, question)
            where = (vilt_task.runtime.engine, name, question)
            assert [a["answer"] for a in result.answers] == [e["answer"] for e in expected], where
            assert [a["score"] for a in result.answers] == pytest.approx([e["score"] for e in expected], abs=TOLERANCE)
            assert result.answers[0]["answer"].lower() in result.text.lower(), where
            rankings.add(tuple(a["answer"] for a in result.answers))
    assert len(rankings) > 1, "every photo and question got the same ranking: the comparison would prove little"


def test_top_k_asks_for_fewer_answers(vilt_task, vilt_reference, photos):
    result = vilt_task(photos["coffee"], VILT_QUESTIONS[1], top_k=2)
    expected = vilt_reference(photos["coffee"], VILT_QUESTIONS[1])[:2]
    assert [a["answer"] for a in result.answers] == [e["answer"] for e in expected]


# Questions --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("question", [None, "", "   \n\t "], ids=["none", "empty", "whitespace"])
def test_empty_question_is_a_sentence(question, vilt_task, photos):
    with pytest.raises(BadQuestionError) as raised:
        vilt_task(photos["coffee"], question)
    assert_plain_sentence(str(raised.value), "question")


def test_2000_character_question_is_a_sentence(vilt_task, photos):
    with pytest.raises(BadQuestionError) as raised:
        vilt_task(photos["coffee"], long_question(2000))
    assert_plain_sentence(str(raised.value), "2000 characters", f"under {MAX_QUESTION_CHARS}")


def test_question_whitespace_is_tidied():
    assert clean_question("  what   color\n is\tthe cup? ") == "what color is the cup?"


def test_longest_allowed_question_is_answered_by_vilt(vilt_task, vilt_reference, photos):
    """A question of MAX_QUESTION_CHARS is answered, cut to ViLT's text positions as its processor cuts it."""
    question = long_question(MAX_QUESTION_CHARS)
    assert len(question) == MAX_QUESTION_CHARS and clean_question(question) == question
    limit = vilt_task.meta["max_text_length"]
    assert len(vilt_task.tokenizer(question)["input_ids"]) > limit  # so the cut is exercised
    result = vilt_task(photos["astronaut"], question)
    expected = vilt_reference(photos["astronaut"], question, truncation=True, max_length=limit)
    assert [a["answer"] for a in result.answers] == [e["answer"] for e in expected]
    assert [a["score"] for a in result.answers] == pytest.approx([e["score"] for e in expected], abs=TOLERANCE)
    with pytest.raises(BadQuestionError, match=f"{MAX_QUESTION_CHARS + 1} characters"):
        vilt_task(photos["astronaut"], question + "?")


def test_longest_allowed_question_is_answered_by_blip(blip_task, blip_reference, photos, generated):
    """The same for BLIP-VQA, whose questions are cut at QUESTION_MAX_LENGTH tokens."""
    from studio.families.blip_vqa import QUESTION_MAX_LENGTH

    question = long_question(MAX_QUESTION_CHARS)
    tokenizer = blip_reference.processor.tokenizer
    assert len(tokenizer(question)["input_ids"]) > QUESTION_MAX_LENGTH
    result = blip_task(photos["astronaut"], question)
    expected_ids = blip_reference(photos["astronaut"], question, truncation=True, max_length=QUESTION_MAX_LENGTH)
    assert_blip_answer(result, expected_ids, generated, tokenizer, blip_task.runtime.engine)


# Describe people -------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def young_vilt_task(young_vilt_dir, tmp_path_factory) -> VqaTask:
    """The tiny ViLT whose answers all speak of young people (tests/fixtures/ask.py: YOUNG_ANSWERS), in PyTorch."""
    return VqaTask.load(str(young_vilt_dir), tmp_path_factory.mktemp("young-models"), backend="torch", device="cpu")


def test_describe_people_keeps_or_drops_young(young_vilt_task, photos):
    from studio.tasks.phrasing import without_age_and_looks

    for name, photo in photos.items():
        plain = young_vilt_task(photo, "who is in the picture?", describe_people=False)
        full = young_vilt_task(photo, "who is in the picture?", describe_people=True)
        best = full.answers[0]["answer"]
        assert "young" in full.text.lower() and best in full.text.lower(), (name, full.text)
        assert "young" not in plain.text.lower(), (name, plain.text)
        assert without_age_and_looks(best) in plain.text.lower(), (name, plain.text)
