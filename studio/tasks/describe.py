"""Describe a picture in sentences and talk about it (SmolVLM): the picture is encoded once into image tokens, then
the language model answers each turn of a conversation, token by token, with greedy decoding by our own loop.

Listener-first: the prompt asks the model to leave out people's age and looks unless the user asks about them, and
the output is checked for them all the same; each sentence is hedged by its own mean token probability; sentences
are handed out as soon as they are complete, so speech can start long before the last token.
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from studio.backends.base import GraphSet
from studio.errors import StudioError
from studio.families.smolvlm import SmolVLMDecoderSteps, SmolVLMPreprocessing, chat_text, image_prompt
from studio.generation import GenerationSettings, generate
from studio.media.image import load_image
from studio.tasks.base import GraphTask
from studio.tasks.phrasing import AGE_AND_LOOKS, hedged, without_age_and_looks

TASK = "describe"
DETAIL_PROMPT = "Describe this picture in detail, in a few sentences."
SHORT_PROMPT = "Describe this picture in one sentence."
# Said in the prompt unless the user asked about people's age or looks (the output is checked too).
PEOPLE_RULE = "Do not comment on people's age or looks."
MAX_NEW_TOKENS = {"detail": 120, "short": 40, "answer": 60}
MAX_QUESTION_CHARS = 300
MAX_TURNS = 12  # a conversation longer than this keeps its last turns only (the picture stays)
# Words in a question that ask about people's age or looks: then the answer may talk about them.
_LOOKS_QUESTION = re.compile(
    r"\b(?:age|ages|aged|old|older|young|look|looks|looking|appearance|wear|wearing|dressed|hair|face|"
    + "|".join(map(re.escape, AGE_AND_LOOKS))
    + r")\b",
    re.IGNORECASE,
)
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+")


class BadQuestionError(StudioError):
    """A question the model cannot take."""


def clean_question(question: str | None) -> str:
    """Tidies a typed or heard question.

    Raises:
        BadQuestionError: It is empty or too long.
    """
    question = " ".join((question or "").split())
    if not question:
        raise BadQuestionError("Type or say a question first.")
    if len(question) > MAX_QUESTION_CHARS:
        raise BadQuestionError(f"The question is {len(question)} characters long; keep it under {MAX_QUESTION_CHARS}.")
    return question


def asks_about_looks(question: str) -> bool:
    """Whether a question asks about people's age or looks (then the answer may talk about them)."""
    return bool(_LOOKS_QUESTION.search(question or ""))


def conversation(history: list[dict], request: str, describe_people: bool) -> list[dict]:
    """The chat messages: the picture in the first user turn, the earlier turns, then the new request.

    Args:
        history: Earlier turns, [{"question", "answer"}] (the model's own words, as it said them).
        request: The new question or description request.
        describe_people: Leave the rule about people's age and looks out of the prompt.
    """
    messages = []
    turns = [*list(history)[-(MAX_TURNS - 1) :], {"question": request, "answer": None}]
    for i, turn in enumerate(turns):
        text = turn["question"]
        if not describe_people and not asks_about_looks(text):
            text = f"{text} {PEOPLE_RULE}"
        content = [{"type": "image"}] if i == 0 else []
        messages.append({"role": "user", "content": [*content, {"type": "text", "text": text}]})
        if turn["answer"] is not None:
            messages.append({"role": "assistant", "content": [{"type": "text", "text": turn["answer"]}]})
    return messages


@dataclass
class EncodedPicture:
    """A picture as the language model sees it.

    Attributes:
        features: Image features (tiles, image_seq_len, D).
        rows, cols: How the picture was split into tiles (0, 0: the global view only).
        encoder_ms: What the vision encoder took (0 when the picture came from the cache).
    """

    features: np.ndarray
    rows: int
    cols: int
    encoder_ms: float

    @property
    def tiles(self) -> int:
        return int(self.features.shape[0])


@dataclass
class Sentence:
    """One sentence of an answer, as soon as it is complete.

    Attributes:
        text: Phrased for listeners (hedged, people's looks left out unless asked).
        model_text: The model's own words.
        confidence: Mean probability of its tokens.
        certainty: "sure", "unsure" or "guessing".
        at_ms: When it was complete, from the start of the request.
    """

    text: str
    model_text: str
    confidence: float
    certainty: str
    at_ms: float

    def as_dict(self) -> dict:
        return {
            "text": self.text,
            "model_text": self.model_text,
            "confidence": round(self.confidence, 4),
            "certainty": self.certainty,
            "at_ms": round(self.at_ms, 1),
        }


@dataclass
class DescribeResult:
    """One answer (a description, or the answer to a question).

    Attributes:
        text: What to show and say: the phrased sentences joined.
        model_text: The model's own words.
        sentences: The sentences as they were handed out.
        token_ids: Generated tokens (prompt excluded).
        confidence: Mean probability of the generated tokens (end token excluded).
        certainty: The least sure sentence's level.
        stopped: Generation was stopped before the model finished.
        prompt_tokens: Length of the prompt, image tokens included.
        image_ms, first_token_ms, first_sentence_ms, decode_ms, latency_ms: Timings from the start of the request.
    """

    text: str
    model_text: str
    sentences: list[Sentence]
    token_ids: list[int]
    confidence: float
    certainty: str
    stopped: bool
    prompt_tokens: int
    tiles: int
    image_ms: float
    first_token_ms: float
    first_sentence_ms: float
    decode_ms: float
    latency_ms: float
    notices: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        generated = max(len(self.token_ids) - 1, 0)
        after_first = self.decode_ms - (self.first_token_ms - self.image_ms)
        return {
            "text": self.text,
            "model_text": self.model_text,
            "sentences": [s.as_dict() for s in self.sentences],
            "tokens": len(self.token_ids),
            "confidence": round(self.confidence, 4),
            "certainty": self.certainty,
            "stopped": self.stopped,
            "prompt_tokens": self.prompt_tokens,
            "tiles": self.tiles,
            "image_ms": round(self.image_ms, 1),
            "time_to_first_token_ms": round(self.first_token_ms, 1),
            "first_sentence_ms": round(self.first_sentence_ms, 1),
            "decode_ms": round(self.decode_ms, 1),
            "latency_ms": round(self.latency_ms, 1),
            "tokens_per_s": round(generated / (after_first / 1000), 2) if after_first > 0 and generated else None,
        }


class DescribeTask(GraphTask):
    """Describes pictures and answers questions about them in a conversation.

    Args:
        graphs: The SmolVLM graphs ("vision_encoder", "embed_tokens", "decoder") with their metadata.
    """

    TASK = TASK

    def __init__(self, graphs: GraphSet) -> None:
        from transformers import AutoTokenizer

        from studio.families import quiet_transformers

        quiet_transformers()
        super().__init__(graphs)
        self.files = Path(graphs.files_dir)
        self.tokenizer = AutoTokenizer.from_pretrained(str(self.files))
        self.meta = dict(graphs.metadata)
        self.preprocessing = SmolVLMPreprocessing.from_dir(self.files)
        self._pictures: OrderedDict[tuple, EncodedPicture] = OrderedDict()
        self._lock = threading.Lock()

    def encode(self, image, split: bool | None = None, channel_order: str = "RGB") -> EncodedPicture:
        """Splits a picture into tiles and runs the vision encoder; the last few pictures are kept, so a follow-up
        question about the same picture costs no image work.

        Args:
            image: Path, bytes, PIL image or array.
            split: Split into tiles as the processor does (None: the model's setting); False: the global view only.
            channel_order: "RGB", or "BGR" for OpenCV frames.
        """
        picture = load_image(image, channel_order)
        split = self.preprocessing.split if split is None else split
        key = (hashlib.sha1(picture.tobytes()).hexdigest(), picture.size, split)
        with self._lock:
            if key in self._pictures:
                self._pictures.move_to_end(key)
                cached = self._pictures[key]
                return EncodedPicture(cached.features, cached.rows, cached.cols, 0.0)
        started = time.perf_counter()
        preprocessing = (
            self.preprocessing if split == self.preprocessing.split else _with_split(self.preprocessing, split)
        )
        tiles, rows, cols = preprocessing(picture)
        features = self.graphs.graphs["vision_encoder"].run({"pixel_values": tiles})["image_features"]
        encoded = EncodedPicture(features, rows, cols, (time.perf_counter() - started) * 1000)
        with self._lock:
            self._pictures[key] = encoded
            while len(self._pictures) > 4:
                self._pictures.popitem(last=False)
        return encoded

    def prompt(self, encoded: EncodedPicture, messages: list[dict]) -> list[int]:
        """A conversation's token ids, its picture expanded into the tiles' image tokens (as the processor does)."""
        text = chat_text(self.files, messages)
        text = text.replace("<image>", image_prompt(encoded.rows, encoded.cols, self.meta["image_seq_len"]), 1)
        return self.tokenizer(text)["input_ids"]

    def respond(
        self,
        encoded: EncodedPicture,
        messages: list[dict],
        *,
        max_new_tokens: int,
        describe_people: bool = False,
        on_sentence: Callable[[Sentence], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
        started: float | None = None,
    ) -> DescribeResult:
        """Generates the answer to the conversation's last turn, handing out each sentence when it is complete.

        Args:
            encoded: The picture.
            messages: The conversation (`conversation()`).
            max_new_tokens: Tokens at most.
            describe_people: Keep words about people's age and looks.
            on_sentence: Called with each sentence as soon as it is complete (from the generating thread).
            should_stop: Polled after every token; True stops generation and keeps what was said.
            started: `time.perf_counter()` at the request's start (timings count from it).
        """
        started = time.perf_counter() if started is None else started
        image_ms = (time.perf_counter() - started) * 1000
        prompt = self.prompt(encoded, messages)
        room = self.meta.get("max_positions", 8192) - len(prompt)
        if room < 2:
            raise StudioError("This conversation is too long for the model; start over with “New photo”.")
        stream = _SentenceStream(self, describe_people, started, on_sentence)
        steps = SmolVLMDecoderSteps(
            self.graphs.graphs["embed_tokens"], self.graphs.graphs["decoder"], encoded.features, self.meta
        )
        settings = GenerationSettings(max_new_tokens=max(1, min(max_new_tokens, room - 1)))
        stopped = False

        def on_token(token: int, logprob: float) -> bool:
            nonlocal stopped
            stream.add(token, logprob)
            if should_stop is not None and should_stop():
                stopped = True
                return False
            return True

        t0 = time.perf_counter()
        result = generate(steps, prompt, settings, self.meta["eos_token_ids"], 0, on_token=on_token)
        decode_ms = (time.perf_counter() - t0) * 1000
        stream.finish()
        probabilities = [p for t, p in zip(stream.tokens, stream.probabilities) if t not in self.meta["eos_token_ids"]]
        confidence = float(np.mean(probabilities)) if probabilities else 0.0
        order = {"guessing": 0, "unsure": 1, "sure": 2}
        certainty = min((s.certainty for s in stream.sentences), key=order.get, default="guessing")
        text = " ".join(s.text for s in stream.sentences) or "I could not describe this picture."
        return DescribeResult(
            text=text,
            model_text=stream.text.strip(),
            sentences=stream.sentences,
            token_ids=result.token_ids,
            confidence=confidence,
            certainty=certainty,
            stopped=stopped,
            prompt_tokens=len(prompt),
            tiles=encoded.tiles,
            image_ms=image_ms,
            first_token_ms=stream.first_token_ms,
            first_sentence_ms=stream.sentences[0].at_ms if stream.sentences else (time.perf_counter() - started) * 1000,
            decode_ms=decode_ms,
            latency_ms=(time.perf_counter() - started) * 1000,
        )


def _with_split(preprocessing: SmolVLMPreprocessing, split: bool) -> SmolVLMPreprocessing:
    from dataclasses import replace

    return replace(preprocessing, split=split)


class _SentenceStream:
    """Collects generated tokens and hands out each sentence once the next one has begun (or generation ended)."""

    def __init__(self, task: DescribeTask, describe_people: bool, started: float, on_sentence) -> None:
        self.task = task
        self.describe_people = describe_people
        self.started = started
        self.on_sentence = on_sentence
        self.tokens: list[int] = []
        self.probabilities: list[float] = []
        self.sentences: list[Sentence] = []
        self.first_token_ms = 0.0
        self.text = ""
        self._said_chars = 0  # characters of `text` already handed out
        self._said_tokens = 0  # tokens of those sentences (for each sentence's confidence)

    def add(self, token: int, logprob: float) -> None:
        if not self.tokens:
            self.first_token_ms = (time.perf_counter() - self.started) * 1000
        self.tokens.append(token)
        self.probabilities.append(float(np.exp(logprob)))
        self.text = self.task.tokenizer.decode(self.tokens, skip_special_tokens=True)
        ends = list(_SENTENCE_END.finditer(self.text, self._said_chars))
        for match in ends:
            self._emit(self.text[self._said_chars : match.start()], len(self.tokens) - 1)
            self._said_chars = match.end()

    def finish(self) -> None:
        rest = self.text[self._said_chars :]
        if rest.strip():
            self._emit(rest, len(self.tokens))
            self._said_chars = len(self.text)

    def _emit(self, model_text: str, upto: int) -> None:
        model_text = model_text.strip()
        if not model_text:
            return
        eos = self.task.meta["eos_token_ids"]
        probabilities = [
            p
            for t, p in zip(self.tokens[self._said_tokens : upto], self.probabilities[self._said_tokens : upto])
            if t not in eos
        ]
        self._said_tokens = upto
        confidence = float(np.mean(probabilities)) if probabilities else 0.0
        text = model_text if self.describe_people else without_age_and_looks(model_text)
        if text[1:2].islower():  # "Probably the cat…", not "Probably The cat…"; hedged() capitalizes a sure one
            text = text[0].lower() + text[1:]
        phrased, certainty = hedged(text, confidence, "I'm not sure about this.") if text else ("", "guessing")
        if not phrased:
            return
        sentence = Sentence(phrased, model_text, confidence, certainty, (time.perf_counter() - self.started) * 1000)
        self.sentences.append(sentence)
        if self.on_sentence is not None:
            self.on_sentence(sentence)
