"""Speech to text: a recording in, the words said out (spoken questions in the Ask tab, `studio predict
speech-to-text`)."""

from __future__ import annotations

from studio.progress import Progress, no_progress
from studio.services.base import Runtime, Service, ran_on

TASK = "speech-to-text"


class TranscribeService(Service):
    """Writes down what is said in a recording."""

    TASK_CLASS = "studio.tasks.transcribe:TranscribeTask"

    def __call__(self, audio, *, runtime: Runtime = Runtime(), progress: Progress = no_progress) -> dict:
        """Transcribes one recording.

        Args:
            audio: A file path (any format ffmpeg reads), its bytes, Gradio's (rate, array) tuple, or a `Waveform`.
            runtime: The model (None: Whisper tiny.en) and device; it runs on PyTorch.
            progress: Receives fractions and sentences while the model loads.

        Returns:
            {"task", "model", "backend", "provider", "runtime", "text", "latency_ms", "duration_s", "tokens",
            "windows", "notices"}.

        Raises:
            BadAudioError: The recording cannot be listened to (checked before the model loads).
            NoWordsError: The model heard no words.
        """
        from studio.media.audio import load_audio

        waveform = load_audio(audio, 16000)  # say what is wrong with the recording before loading a model
        task = self.task(runtime, progress)
        result = task(waveform if waveform.rate == task.sampling_rate else audio)
        return {"task": TASK, **ran_on(task), **result.as_dict(), "notices": list(task.graphs.notices)}
