"""Visual question answering: a question about a picture, typed or spoken, answered for listeners."""

from __future__ import annotations

from studio.progress import Progress, no_progress, scaled
from studio.services.base import LoadedModels, Runtime, Service, ran_on
from studio.services.transcribe import TranscribeService

TASK = "vqa"


class AskService(Service):
    """Answers questions about pictures: the whole job behind the Ask tab and `studio predict vqa`."""

    TASK_CLASS = "studio.tasks.vqa:VqaTask"

    def __init__(self, models: LoadedModels) -> None:
        super().__init__(models)
        self.transcribe = TranscribeService(models)

    def __call__(
        self,
        image,
        question: str | None = None,
        *,
        question_audio=None,
        top_k: int = 5,
        describe_people: bool = False,
        runtime: Runtime = Runtime(),
        stt_model: str | None = None,
        channel_order: str = "RGB",
        progress: Progress = no_progress,
    ) -> dict:
        """Answers one question about one picture.

        Args:
            image: Path, bytes, PIL image or array.
            question: The question, in English (or give `question_audio`).
            question_audio: A recording of the question: it is written down first, and the result says what was heard.
            top_k: How many answers to list (models with a fixed answer list).
            describe_people: Keep words about people's age and looks in the answer.
            runtime: Which question-answering model, and on what.
            stt_model: The speech-to-text model for `question_audio` (on the same device).
            channel_order: "RGB", or "BGR" for OpenCV frames.
            progress: Receives fractions and sentences while the models load.

        Returns:
            {"task", "model", "backend", "provider", "runtime", "question", "answers": [{"answer", "score"}],
            "answer" (phrased for listeners), "certainty", "latency_ms", "notices"}, and "heard" (the transcript's
            dict) for a spoken question.

        Raises:
            StudioError: A bad picture, question or recording (checked before the question-answering model loads).
        """
        from studio.media.image import load_image
        from studio.tasks.vqa import clean_question

        picture = load_image(image, channel_order)
        heard = None
        if question_audio is not None:
            stt = Runtime(model=stt_model, device=runtime.device)
            heard = self.transcribe(question_audio, runtime=stt, progress=scaled(progress, 0, 0.5))
            question = heard["text"]
        question = clean_question(question)
        task = self.task(runtime, progress)
        result = task(picture, question, top_k=top_k, describe_people=describe_people)
        out = {"task": TASK, **ran_on(task), **result.as_dict()}
        if heard is not None:
            out["heard"] = {k: heard[k] for k in ("text", "latency_ms", "duration_s", "tokens", "windows")}
        out["notices"] = task.graphs.notices + result.notices
        return out
