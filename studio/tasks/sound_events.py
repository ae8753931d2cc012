"""What is heard, window by window: sound tagging with AST (527 AudioSet labels) or zero-shot with CLAP (typed labels).

A recording is decoded by `studio.media.audio.sound_windows` one window at a time (the model's own window: 10.24 s
for AST, 10 s for CLAP), turned into log-mel features (`studio.media.sound_features`, equal to the models' own
feature extractors) and scored a few windows per batch, so an hour of sound never sits in memory at once.

- AST scores are sigmoids of its logits (trained multi-label: several sounds at once are normal).
- CLAP scores are the softmax over the typed labels of the scaled cosine similarities between the window's audio
  embedding and each label's text embedding ("This is a sound of {label}."), as transformers' zero-shot audio
  classification pipeline computes them.

Silent windows (nothing above `SILENCE_DBFS`) are not sent to the model; they are reported as silence.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from studio.backends.base import GraphSet
from studio.errors import BadLabelsError
from studio.media.audio import AudioWindow, SilentRecordingError, is_silent, sound_windows
from studio.progress import Progress, no_progress
from studio.scores import normalize, ranked, sigmoid, softmax, top_indices
from studio.tasks.base import GraphTask

TASK = "av-events"
# transformers' zero-shot-audio-classification pipeline's default hypothesis template.
CLAP_TEMPLATE = "This is a sound of {}."
TOP_PER_WINDOW = 3
_BATCH = 4  # windows per model call: a batch of 4 AST windows is about 0.5 GB of activations at full size
_CACHE_SIZE = 16


@dataclass
class WindowEvents:
    """What one window holds.

    Attributes:
        index: 0 for the first window.
        start_s: Its start in the recording (seconds).
        end_s: Its end.
        silent: Nothing above the silence level: the model was not run.
        scores: Score of every label the model scored (AST: all its labels; CLAP: the typed ones); None when silent.
        embedding: The window's audio embedding (AST's pooled state, CLAP's normalized embedding); None when silent.
    """

    index: int
    start_s: float
    end_s: float
    silent: bool
    scores: np.ndarray | None = None
    embedding: np.ndarray | None = None

    def top(self, labels: tuple[str, ...], k: int = TOP_PER_WINDOW) -> list[dict]:
        """The k best labels as [{"label", "score"}] (empty when silent)."""
        return [] if self.scores is None else ranked(self.scores, labels, k)


@dataclass
class SoundEventsResult:
    """A recording's events.

    Attributes:
        kind: "tagging" (AST: fixed labels, independent sigmoid scores) or "zero-shot" (CLAP: typed labels, softmax).
        labels: The labels scored, in score order of `WindowEvents.scores`.
        windows: One entry per window, in time order.
        duration_s: Length of the recording.
        window_s: The model's window.
        latency_ms: The whole call.
        notices: Sentences for the user.
    """

    kind: str
    labels: tuple[str, ...]
    windows: list[WindowEvents]
    duration_s: float
    window_s: float
    latency_ms: float
    notices: list[str] = field(default_factory=list)

    @property
    def heard(self) -> list[WindowEvents]:
        """The windows that were not silent."""
        return [w for w in self.windows if not w.silent]

    def mean_scores(self) -> np.ndarray:
        """Each label's mean score over the windows with sound."""
        heard = self.heard
        if not heard:
            return np.zeros(len(self.labels))
        return np.mean([w.scores for w in heard], axis=0)

    def embedding(self) -> np.ndarray | None:
        """The recording's audio embedding: the mean over windows with sound (None when all were silent)."""
        heard = [w.embedding for w in self.heard if w.embedding is not None]
        return np.mean(heard, axis=0).astype(np.float32) if heard else None

    def summary(self, k: int = 5) -> list[dict]:
        """The k labels heard most, over the whole recording.

        Returns:
            [{"label", "score" (mean over windows with sound), "peak" (highest window score), "windows" (how many
            windows had it among their top labels), "first_s" (start of the first such window, or None)}].
        """
        mean = self.mean_scores()
        heard = self.heard
        out = []
        for i in top_indices(mean, k):
            label = self.labels[i]
            tops = [w for w in heard if any(t["label"] == label for t in w.top(self.labels))]
            out.append(
                {
                    "label": label,
                    "score": float(mean[i]),
                    "peak": float(max((w.scores[i] for w in heard), default=0.0)),
                    "windows": len(tops),
                    "first_s": round(tops[0].start_s, 2) if tops else None,
                }
            )
        return out

    def events(self, k: int = TOP_PER_WINDOW) -> list[dict]:
        """Per window: {"start_s", "end_s", "silent", "labels": [{"label", "score"}]} (the timeline)."""
        return [
            {
                "start_s": round(w.start_s, 3),
                "end_s": round(w.end_s, 3),
                "silent": w.silent,
                "labels": w.top(self.labels, k),
            }
            for w in self.windows
        ]


@dataclass(frozen=True)
class SoundLabelSet:
    """CLAP label texts, encoded: one normalized embedding per label."""

    labels: tuple[str, ...]
    embeddings: np.ndarray


class SoundEventsTask(GraphTask):
    """Listens to recordings with an AST (tagging) or CLAP (zero-shot) model's graphs.

    Args:
        graphs: AST's "audio_classifier", or CLAP's "audio_encoder" and "text_encoder"; `metadata["kind"]` says
            which ("tagging" or "zero-shot").
    """

    TASK = TASK

    def __init__(self, graphs: GraphSet) -> None:
        from studio.media.sound_features import AstFeatures, ClapFeatures

        super().__init__(graphs)
        files = Path(graphs.files_dir)
        self.kind = str(graphs.metadata.get("kind", "tagging"))
        if self.kind == "tagging":
            self.features = AstFeatures.from_dir(files)
            self.model_labels: tuple[str, ...] = tuple(graphs.metadata["labels"])
        else:
            self.features = ClapFeatures.from_dir(files)
            self.tokenizer = self.text_tokenizer()
            self.logit_scale = float(graphs.metadata["logit_scale"])
            self.model_labels = ()
        self._cache: OrderedDict[tuple, SoundLabelSet] = OrderedDict()

    @property
    def rate(self) -> int:
        """The rate the model listens at (16 kHz for AST, 48 kHz for CLAP)."""
        return self.features.sampling_rate

    @property
    def window_samples(self) -> int:
        return self.features.window_samples

    @property
    def window_s(self) -> float:
        return self.window_samples / self.rate

    @property
    def takes_typed_labels(self) -> bool:
        """Whether the model listens for labels the user types (CLAP) rather than its own (AST)."""
        return self.kind == "zero-shot"

    # Labels ----------------------------------------------------------------------------------------------------

    def encode_labels(self, labels: list[str]) -> SoundLabelSet:
        """CLAP: encodes label texts once per label set (cached)."""
        key = tuple(labels)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        label_set = SoundLabelSet(key, self.embed_texts([CLAP_TEMPLATE.format(label) for label in labels]))
        self._cache[key] = label_set
        if len(self._cache) > _CACHE_SIZE:
            self._cache.popitem(last=False)
        return label_set

    def labels_for(self, labels: str | list[str] | None) -> tuple[tuple[str, ...], list[str]]:
        """The labels this model scores for what the user typed, and notices.

        AST scores its own labels whatever is typed; CLAP scores the typed labels (at least two).

        Raises:
            BadLabelsError: CLAP without usable labels.
        """
        if not self.takes_typed_labels:
            return self.model_labels, []
        from studio.tasks.zero_shot import parse_labels

        if not labels or (isinstance(labels, str) and not labels.strip()):
            raise BadLabelsError(
                "Type the sounds to listen for, separated by commas, for example: dog barking, door knock, applause."
            )
        names, notices = parse_labels(labels)
        return tuple(names), notices

    # Pipeline --------------------------------------------------------------------------------------------------

    def preprocess(self, windows: list[np.ndarray]) -> np.ndarray:
        """Log-mel features of windows (each at most one window long): the graph's input."""
        return self.features.batch(windows)

    def forward(self, features: np.ndarray) -> tuple[np.ndarray | None, np.ndarray]:
        """Runs the audio graph: (AST logits or None, audio embeddings)."""
        if self.kind == "tagging":
            out = self.graphs.graphs["audio_classifier"].run({"input_values": features})
            return out["logits"], out["audio_embeds"]
        out = self.graphs.graphs["audio_encoder"].run({"input_features": features})
        return None, normalize(out["audio_embeds"].astype(np.float32))

    def postprocess(self, logits: np.ndarray | None, embeds: np.ndarray, label_set: SoundLabelSet | None) -> np.ndarray:
        """Scores per window: AST sigmoids, or CLAP's softmax over the label set."""
        if logits is not None:
            return sigmoid(logits)
        return softmax(self.logit_scale * embeds.astype(np.float64) @ label_set.embeddings.astype(np.float64).T)

    def score_windows(self, windows: list[AudioWindow], label_set: SoundLabelSet | None) -> list[WindowEvents]:
        """Scores windows, skipping silent ones."""
        out = [WindowEvents(w.index, w.start_s, w.end_s, silent=is_silent(w.waveform)) for w in windows]
        loud = [i for i, w in enumerate(out) if not w.silent]
        if loud:
            logits, embeds = self.forward(self.preprocess([windows[i].samples for i in loud]))
            scores = self.postprocess(logits, embeds, label_set)
            for j, i in enumerate(loud):
                out[i].scores = scores[j]
                out[i].embedding = embeds[j].astype(np.float32)
        return out

    def __call__(
        self,
        audio,
        labels: str | list[str] | None = None,
        hop_s: float | None = None,
        progress: Progress = no_progress,
    ) -> SoundEventsResult:
        """Listens to a whole recording, window by window.

        Args:
            audio: A file path (any length: it is streamed), bytes, Gradio's (rate, array) tuple, or a `Waveform`.
            labels: The sounds to listen for (CLAP; ignored by AST, which names sounds with its own labels).
            hop_s: Seconds from one window's start to the next (default: one window, no overlap).
            progress: Receives fractions and sentences, window by window.

        Raises:
            BadAudioError: The recording cannot be listened to, or it is silent throughout (the sentence says why).
            BadLabelsError: CLAP without usable labels.
        """
        started = time.perf_counter()
        names, notices = self.labels_for(labels)
        label_set = self.encode_labels(list(names)) if self.takes_typed_labels else None
        hop = int(hop_s * self.rate) if hop_s else None
        windows: list[WindowEvents] = []
        pending: list[AudioWindow] = []
        duration = 0.0
        for window in sound_windows(audio, self.rate, self.window_samples, hop, progress=progress):
            pending.append(window)
            duration = max(duration, window.end_s)
            if len(pending) == _BATCH:
                windows += self.score_windows(pending, label_set)
                pending = []
        if pending:
            windows += self.score_windows(pending, label_set)
        if all(w.silent for w in windows):
            raise SilentRecordingError(
                "The recording is silent, so there is nothing to recognise — check that the microphone is on and "
                "not muted, or that the file has sound."
            )
        progress(1.0, "Listened to the whole recording.")
        return SoundEventsResult(
            self.kind, names, windows, duration, self.window_s, (time.perf_counter() - started) * 1000, notices
        )

    def listen_window(self, samples: np.ndarray, label_set: SoundLabelSet | None, start_s: float = 0.0):
        """Scores one window of live sound (already at `rate`): the rolling microphone's step."""
        window = AudioWindow(0, start_s, np.asarray(samples[-self.window_samples :], np.float32), self.rate)
        return self.score_windows([window], label_set)[0]


class RollingListener:
    """Live listening: keeps the last `window_s` of sound and scores it every `every_s` of new sound.

    Feed it chunks as a microphone delivers them (any rate; they are mixed to mono and resampled); each time enough
    new sound has arrived it returns the window's events. Nothing here touches a device, so the loop of
    `studio listen` and the browser microphone stream run the same code as tests fed from a file.

    Args:
        task: The loaded task.
        labels: The sounds to listen for (CLAP), as typed.
        window_s: Seconds of sound each step looks at (at most the model's window).
        every_s: Seconds of new sound between steps.
    """

    def __init__(self, task: SoundEventsTask, labels=None, window_s: float = 5.0, every_s: float = 1.0) -> None:
        self.task = task
        self.labels, self.notices = task.labels_for(labels)
        self.label_set = task.encode_labels(list(self.labels)) if task.takes_typed_labels else None
        self.window = min(int(window_s * task.rate), task.window_samples)
        self.every = max(1, int(every_s * task.rate))
        self._buffer = np.zeros(0, np.float32)
        self._since = 0
        self._heard = 0  # samples received, at the task's rate
        self._resamplers: dict[int, object] = {}

    @property
    def heard_s(self) -> float:
        return self._heard / self.task.rate

    def feed(self, samples: np.ndarray, rate: int) -> list[WindowEvents]:
        """Adds a chunk; returns the events of each step it completed (usually none or one).

        Args:
            samples: (n,) or (n, channels) samples: float in [-1, 1] or integers (scaled like WAV samples).
            rate: Their rate.
        """
        from studio.media.audio import StreamResampler, samples_to_float, to_mono

        if rate not in self._resamplers:
            # Small blocks: a live stream should not wait long for its resampled sound.
            self._resamplers = {rate: StreamResampler(rate, self.task.rate, block=rate // 20)}
        mono = self._resamplers[rate].push(to_mono(samples_to_float(np.asarray(samples))))
        return self._steps(mono)

    def flush(self) -> list[WindowEvents]:
        """The steps of the sound still held in the resampler, once the input has ended (a file's last chunk)."""
        mono = np.concatenate([r.flush() for r in self._resamplers.values()]) if self._resamplers else np.zeros(0)
        return self._steps(mono.astype(np.float32))

    def _steps(self, mono: np.ndarray) -> list[WindowEvents]:
        mono = np.clip(mono, -1.0, 1.0)
        out = []
        position = 0
        while position < len(mono):
            piece = mono[position : position + self.every - self._since]
            position += len(piece)
            self._buffer = np.concatenate([self._buffer, piece])[-self.window :]
            self._since += len(piece)
            self._heard += len(piece)
            if self._since >= self.every:
                self._since = 0
                start = (self._heard - len(self._buffer)) / self.task.rate
                out.append(self.task.listen_window(self._buffer, self.label_set, start))
        return out


def listen(chunks, listener: RollingListener, seconds: float | None = None):
    """The live loop: feeds chunks of sound to the listener and yields each step's events as plain data.

    Args:
        chunks: (samples, rate) pairs, from the microphone (`studio.media.microphone.microphone_chunks`) or a file.
        listener: The rolling window.
        seconds: Stop after this much sound (None: until the chunks end).

    Yields:
        {"start_s", "end_s", "silent", "labels": [{"label", "score"}]} per step.
    """

    def as_event(step: WindowEvents) -> dict:
        return {
            "start_s": round(step.start_s, 3),
            "end_s": round(step.end_s, 3),
            "silent": step.silent,
            "labels": step.top(listener.labels),
        }

    for samples, rate in chunks:
        for step in listener.feed(samples, rate):
            yield as_event(step)
        if seconds is not None and listener.heard_s >= seconds:
            return
    for step in listener.flush():
        yield as_event(step)


def file_chunks(path, chunk_s: float = 0.1):
    """A recording as (samples, rate) chunks of `chunk_s`, as a microphone would deliver it (at the file's rate)."""
    from studio.media.audio import open_sound, to_mono

    reader = open_sound(path)
    step = max(1, int(chunk_s * reader.rate))
    try:
        for block in reader.blocks:
            mono = to_mono(block)
            for i in range(0, len(mono), step):
                yield mono[i : i + step], reader.rate
    finally:
        reader.close()
