"""Describing and talking about a picture with a vision-language model (SmolVLM): a detailed description, or a
conversation of questions about one picture, streamed sentence by sentence."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator

from studio.progress import Progress, no_progress, scaled
from studio.services.base import LoadedModels, Runtime, Service, ran_on
from studio.services.transcribe import TranscribeService

TASK = "describe"


class DescribeService(Service):
    """The whole job behind the Caption tab's "Detailed" length, the Ask tab's conversation and
    `studio predict describe`."""

    TASK_CLASS = "studio.tasks.describe:DescribeTask"

    def __init__(self, models: LoadedModels) -> None:
        super().__init__(models)
        self.transcribe = TranscribeService(models)

    def __call__(self, image, **options) -> dict:
        """Describes a picture, or answers a question about it, and returns when the answer is complete.

        Args:
            image: Path, bytes, PIL image or array.
            **options: `stream()`'s options.

        Returns:
            `stream()`'s final result.
        """
        result = None
        for event in self.stream(image, **options):
            if event["event"] == "done":
                result = event["result"]
        return result

    def stream(
        self,
        image,
        *,
        question: str | None = None,
        question_audio=None,
        history: list[dict] | tuple = (),
        detail: bool = True,
        describe_people: bool = False,
        split: bool | None = None,
        max_new_tokens: int | None = None,
        runtime: Runtime = Runtime(),
        stt_model: str | None = None,
        channel_order: str = "RGB",
        stop: threading.Event | None = None,
        progress: Progress = no_progress,
    ) -> Iterator[dict]:
        """Describes a picture or answers a question about it, yielding each sentence as soon as it is complete.

        Args:
            image: Path, bytes, PIL image or array.
            question: A question about the picture; None asks for a description.
            question_audio: A recording of the question (written down first; the result says what was heard).
            history: The conversation so far about this picture: [{"question", "answer"}], answers in the model's
                own words (each result's "model_text").
            detail: A description in a few sentences (True) or one sentence (False); ignored for questions.
            describe_people: Keep words about people's age and looks (otherwise asked only when the question does).
            split: Split the picture into tiles as the model was trained (None: the model's setting); False looks
                at the whole picture once, about (tiles) times faster.
            max_new_tokens: Tokens at most (default: 120 for a description, 40 for one sentence, 60 for an answer).
            runtime: Which model, and on what.
            stt_model: The speech-to-text model for `question_audio`.
            channel_order: "RGB", or "BGR" for OpenCV frames.
            stop: Set it to stop generation; what was said so far is kept.
            progress: Receives fractions and sentences while models load.

        Yields:
            {"event": "heard", "heard"} for a spoken question; {"event": "sentence", "sentence", "index"} per
            sentence; and last {"event": "done", "result"}: {"task", "model", "revision", "backend", "provider",
            "runtime", "question", "text", "model_text", "sentences", "tokens", "confidence", "certainty", "stopped",
            "prompt_tokens", "tiles", "image_ms", "time_to_first_token_ms", "first_sentence_ms", "decode_ms",
            "latency_ms", "tokens_per_s", "turn", "history", "notices"} ("history" includes this turn).

        Raises:
            StudioError: A bad picture, question or recording (checked before the model loads), or no model.
        """
        from studio.media.image import load_image
        from studio.tasks.describe import DETAIL_PROMPT, MAX_NEW_TOKENS, SHORT_PROMPT, clean_question, conversation

        started = time.perf_counter()
        picture = load_image(image, channel_order)
        history = [{"question": str(t["question"]), "answer": str(t["answer"])} for t in (history or ())]
        if question_audio is not None:
            heard = self.transcribe(
                question_audio,
                runtime=Runtime(model=stt_model, device=runtime.device),
                progress=scaled(progress, 0, 0.4),
            )
            question = heard["text"]
            yield {"event": "heard", "heard": {k: heard[k] for k in ("text", "latency_ms", "duration_s")}}
        if question is not None or question_audio is not None:
            request = clean_question(question)
            limit = MAX_NEW_TOKENS["answer"]
        else:
            request = DETAIL_PROMPT if detail else SHORT_PROMPT
            limit = MAX_NEW_TOKENS["detail" if detail else "short"]
        task = self.task(runtime, progress)
        started = time.perf_counter() if question_audio is not None else started
        encoded = task.encode(picture, split=split)
        messages = conversation(history, request, describe_people)
        stop = stop if stop is not None else threading.Event()
        sentences: queue.Queue = queue.Queue()
        outcome: dict = {}

        def work() -> None:
            try:
                outcome["result"] = task.respond(
                    encoded,
                    messages,
                    max_new_tokens=max_new_tokens or limit,
                    describe_people=describe_people,
                    on_sentence=sentences.put,
                    should_stop=stop.is_set,
                    started=started,
                )
            except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread below
                outcome["error"] = exc
            finally:
                sentences.put(None)

        worker = threading.Thread(target=work, name="describe", daemon=True)
        worker.start()
        index = 0
        try:
            while (sentence := sentences.get()) is not None:
                yield {"event": "sentence", "sentence": sentence.as_dict(), "index": index}
                index += 1
        finally:
            if worker.is_alive():  # the caller went away: stop generating
                stop.set()
        worker.join()
        if "error" in outcome:
            raise outcome["error"]
        result = outcome["result"]
        turn = {"question": request, "answer": result.model_text}
        yield {
            "event": "done",
            "result": {
                "task": TASK,
                **ran_on(task),
                "question": request,
                **result.as_dict(),
                "image_ms": round(encoded.encoder_ms, 1),
                "picture_cached": encoded.encoder_ms == 0.0,
                "turn": len(history) + 1,
                "history": [*history, turn],
                "notices": list(task.graphs.notices) + result.notices,
            },
        }
