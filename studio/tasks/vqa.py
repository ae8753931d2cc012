"""Visual question answering: a question about an image, answered with scores.

Two kinds of models: a classifier over a fixed answer list (ViLT: one forward pass, top-k answers with their
probabilities) and a generator (BLIP: the answer is decoded token by token with our generation loop, like a caption;
its score is the geometric mean of the answer's token probabilities). The answer is phrased for listeners the same way
captions are: hedged when the model is unsure.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from studio.backends.base import GraphSet
from studio.errors import StudioError
from studio.generation import GenerationSettings, generate
from studio.media.image import load_image
from studio.tasks.base import GraphTask
from studio.tasks.phrasing import hedged, without_age_and_looks

TASK = "vqa"
MAX_QUESTION_CHARS = 300
# BLIP answers are a few words ("yes", "2", "on the table"); VQAv2 answers are at most about 10 tokens.
ANSWER_SETTINGS = GenerationSettings(max_new_tokens=10)


class BadQuestionError(StudioError):
    """A question the model cannot take."""


@dataclass
class VqaResult:
    """One answered question.

    Attributes:
        question: The question as asked (whitespace tidied).
        answers: [{"answer", "score"}], best first (one entry for generative models).
        text: What to show and speak for the best answer, phrased by confidence.
        certainty: "sure", "unsure" or "guessing".
        latency_ms: Whole call.
    """

    question: str
    answers: list[dict]
    text: str
    certainty: str
    latency_ms: float
    notices: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        """The result as plain data ("answer" is the phrased text)."""
        plain = {k: getattr(self, k) for k in ("question", "answers")}
        return {**plain, "answer": self.text, "certainty": self.certainty, "latency_ms": round(self.latency_ms, 2)}


def clean_question(question: str | None) -> str:
    """Tidies a question and refuses what no model can answer.

    Raises:
        BadQuestionError: Empty, or longer than `MAX_QUESTION_CHARS`.
    """
    text = " ".join((question or "").split())
    if not text:
        raise BadQuestionError("Type or say a question about the picture first, for example: what color is the cup?")
    if len(text) > MAX_QUESTION_CHARS:
        raise BadQuestionError(
            f"That question is {len(text)} characters long; ask something shorter (under {MAX_QUESTION_CHARS} "
            "characters), like: how many people are there?"
        )
    return text


def _without_age_and_looks(answers: list[dict]) -> list[dict]:
    """Answers with people's age and looks left out; answers that become the same keep their best score."""
    merged: dict[str, float] = {}
    for answer in answers:
        text = without_age_and_looks(answer["answer"])
        merged[text] = max(merged.get(text, 0.0), answer["score"])
    return [{"answer": text, "score": score} for text, score in sorted(merged.items(), key=lambda kv: -kv[1])]


class VqaTask(GraphTask):
    """Answers questions about images.

    Args:
        graphs: A ViLT graph ("vqa_classifier") or BLIP's ("image_encoder", "question_encoder", "text_decoder").
    """

    TASK = TASK

    def __init__(self, graphs: GraphSet) -> None:
        from transformers import AutoTokenizer

        from studio.families import quiet_transformers

        quiet_transformers()
        super().__init__(graphs)
        self.files = Path(graphs.files_dir)
        self.meta = dict(graphs.metadata)
        self.tokenizer = AutoTokenizer.from_pretrained(str(self.files))
        self.generative = "question_encoder" in graphs.graphs
        from studio.media.image import ImagePreprocessing, ViltImagePreprocessing

        # Read the image settings once per model, not per question.
        preprocessing = ImagePreprocessing if self.generative else ViltImagePreprocessing
        self.preprocessing = preprocessing.from_dir(self.files)

    def __call__(
        self, image, question: str, top_k: int = 5, describe_people: bool = False, channel_order: str = "RGB"
    ) -> VqaResult:
        """Answers one question about one image.

        Args:
            image: Path, bytes, PIL image or array (see `media.image.load_image`).
            question: The question, in English.
            top_k: How many answers to return (classifier models).
            describe_people: Keep words about people's age and looks in the answer.
            channel_order: "RGB", or "BGR" for OpenCV frames.
        """
        started = time.perf_counter()
        question = clean_question(question)
        picture = load_image(image, channel_order)
        answers = self._generate(picture, question) if self.generative else self._classify(picture, question, top_k)
        if not describe_people:
            answers = _without_age_and_looks(answers)
        text, certainty = hedged(answers[0]["answer"], answers[0]["score"], not_sure="I'm not sure.")
        return VqaResult(question, answers, text, certainty, (time.perf_counter() - started) * 1000)

    def _generate(self, picture, question: str) -> list[dict]:
        from studio.families.blip import BlipDecoderSteps
        from studio.families.blip_vqa import tokenize_question

        graphs = self.graphs.graphs
        image_embeds = graphs["image_encoder"].run({"pixel_values": self.preprocessing.batch([picture])})[
            "image_embeds"
        ]
        encoded = graphs["question_encoder"].run(
            {**tokenize_question(self.tokenizer, question), "image_embeds": image_embeds}
        )
        steps = BlipDecoderSteps(graphs["text_decoder"], encoded["cross_k"], encoded["cross_v"], self.meta)
        result = generate(
            steps, [self.meta["bos_token_id"]], ANSWER_SETTINGS, self.meta["eos_token_id"], self.meta["pad_token_id"]
        )
        logprobs = result.token_logprobs
        if result.token_ids and result.token_ids[-1] == self.meta["eos_token_id"]:
            logprobs = logprobs[:-1]  # the end token says "done", not what the answer is
        answer = self.tokenizer.decode(result.token_ids, skip_special_tokens=True).strip()
        score = float(np.exp(np.mean(logprobs))) if logprobs else 0.0
        return [{"answer": answer or "(no answer)", "score": score}]

    def _classify(self, picture, question: str, top_k: int) -> list[dict]:
        from studio.families.vilt import prepare_inputs, top_answers

        feed = prepare_inputs(self.preprocessing, self.tokenizer, picture, question, self.meta["max_text_length"])
        logits = self.graphs.graphs["vqa_classifier"].run(feed)["logits"]
        return top_answers(logits[0], self.meta["id2label"], k=top_k)
