"""Sound & scene: what is happening, from the sound, the picture, or both fused.

The sound is heard by `SoundEventsTask` (AST or CLAP, window by window) and the picture is scored by the zero-shot
image model (`ZeroShotTask`, CLIP) over the same label text: a photo, a camera frame, or frames of a video (their
probabilities averaged). Both sides are then brought to one distribution over the **labels in play**:

- CLAP (typed labels): the labels the user typed, for the sound (CLAP's softmax, averaged over windows with sound)
  and the picture (CLIP's softmax) alike.
- AST (AudioSet's 527 labels): the sound names its own labels, so the labels in play are the `AST_LABELS_IN_PLAY`
  labels it heard most over the recording, plus any typed label that is an AudioSet label name. Its sigmoid scores
  of those labels, averaged over windows, are divided by their sum to make a distribution (AST's scores are
  independent per label, CLIP's are a softmax); the picture is scored by CLIP over the same label names. With no
  sound, AST says nothing, and the typed labels are scored from the picture alone.

Fusion:
- **late**: `w * audio + (1 - w) * picture` per label, with the user's audio weight `w`; each modality's contribution
  to a label is its term of that sum.
- **early** / **attention**: a trained fusion head (`studio.fusion.heads`) over the two embeddings, predicting its
  own classes. Without a trained head these modes are refused with a sentence (the tab offers late fusion instead);
  nothing untrained is ever shown as a prediction.

With one modality missing (no sound given, a video without a sound track, or no picture), the other is used alone and
the result says so.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from studio.errors import BadLabelsError, StudioError
from studio.media.audio import NoSoundTrackError
from studio.progress import Progress, no_progress, scaled
from studio.scores import normalize, ranked, top_indices
from studio.tasks.sound_events import SoundEventsResult, SoundEventsTask
from studio.tasks.zero_shot import DEFAULT_TEMPLATE, ZeroShotTask, parse_labels

TASK = "av-events"
FUSIONS = ("late", "early", "attention")
AST_LABELS_IN_PLAY = 5
DEFAULT_AUDIO_WEIGHT = 0.5
VIDEO_FRAMES = 8


class NothingToRecognizeError(StudioError):
    """Neither a sound nor a picture was given."""


@dataclass
class PictureScores:
    """The picture side: CLIP's probabilities over the labels in play.

    Attributes:
        labels: The labels scored.
        probs: Mean over the frames of CLIP's softmax over `labels`.
        embedding: The normalized mean of the frames' normalized image embeddings.
        frames: How many pictures were scored (1 for a photo).
        latency_ms: Time for the pictures (label encoding included).
    """

    labels: tuple[str, ...]
    probs: np.ndarray
    embedding: np.ndarray
    frames: int
    latency_ms: float


@dataclass
class AvEventsResult:
    """One recognition.

    Attributes:
        labels: The labels in play.
        fusion: The fusion used ("late", "early", "attention", or "audio only" / "picture only").
        audio_weight: The late-fusion weight of the sound.
        fused: Probability per label in play.
        contributions: (labels, 2): each label's [audio, picture] part of its fused probability.
        audio_probs: The sound's distribution over the labels in play (None without sound).
        picture: The picture side (None without a picture).
        sound: Everything heard, window by window (None without sound).
        head: Name of the fusion head used, if any.
        notices: Sentences for the user (missing modality, dropped labels...).
        latency_ms: The whole call.
    """

    labels: tuple[str, ...]
    fusion: str
    audio_weight: float
    fused: np.ndarray
    contributions: np.ndarray
    audio_probs: np.ndarray | None
    picture: PictureScores | None
    sound: SoundEventsResult | None
    head: str | None = None
    notices: list[str] = field(default_factory=list)
    latency_ms: float = 0.0

    def ranking(self, k: int | None = None) -> list[dict]:
        """Labels by fused probability: [{"label", "score", "audio", "picture"}] (audio + picture = score)."""
        order = top_indices(self.fused, k or None)
        return [
            {
                "label": self.labels[i],
                "score": float(self.fused[i]),
                "audio": float(self.contributions[i, 0]),
                "picture": float(self.contributions[i, 1]),
            }
            for i in order
        ]

    def modality_scores(self, which: str) -> list[dict] | None:
        """One side's own distribution over the labels in play, best first (None when that side is missing)."""
        probs = self.audio_probs if which == "audio" else (self.picture.probs if self.picture else None)
        return None if probs is None else ranked(probs, self.labels)

    def as_dict(self, top_k: int = 10) -> dict:
        """Plain data for JSON: per-modality and fused scores, and per-window events."""
        out = {
            "labels_in_play": list(self.labels),
            "fusion": self.fusion,
            "audio_weight": self.audio_weight,
            "fused": self.ranking(top_k),
            "audio": self.modality_scores("audio"),
            "picture": self.modality_scores("picture"),
            "head": self.head,
            "latency_ms": round(self.latency_ms, 2),
            "notices": list(self.notices),
        }
        if self.picture is not None:
            out["picture_frames"] = self.picture.frames
        if self.sound is not None:
            out["sound"] = {
                "kind": self.sound.kind,
                "duration_s": round(self.sound.duration_s, 3),
                "window_s": round(self.sound.window_s, 3),
                "summary": self.sound.summary(),
                "events": self.sound.events(),
            }
        return out


def ast_labels_in_play(sound: SoundEventsResult, typed: list[str]) -> tuple[tuple[str, ...], list[str]]:
    """AST's labels in play: its most heard labels, then typed labels that are AudioSet names; and notices."""
    known = {label.casefold(): label for label in sound.labels}
    labels = [s["label"] for s in sound.summary(AST_LABELS_IN_PLAY)]
    unknown = []
    for label in typed:
        name = known.get(label.casefold())
        if name is None:
            unknown.append(label)
        elif name not in labels:
            labels.append(name)
    notices = []
    if unknown:
        notices.append(
            f"The sound model names sounds with its own {len(sound.labels)} labels, and "
            + ", ".join(f"“{u}”" for u in unknown)
            + (" is not one of them" if len(unknown) == 1 else " are not among them")
            + "; choose CLAP as the sound model to listen for your own labels."
        )
    return tuple(labels), notices


def restricted_distribution(scores: np.ndarray, labels: tuple[str, ...], wanted: tuple[str, ...]) -> np.ndarray:
    """Scores of `wanted` labels (0 for labels the model lacks) divided by their sum; uniform when all are 0."""
    index = {label.casefold(): i for i, label in enumerate(labels)}
    values = np.array([scores[index[w.casefold()]] if w.casefold() in index else 0.0 for w in wanted], np.float64)
    total = values.sum()
    return values / total if total > 0 else np.full(len(wanted), 1.0 / len(wanted))


def score_picture(task: ZeroShotTask, images: list, labels: tuple[str, ...], channel_order: str = "RGB"):
    """CLIP's mean probabilities over `labels` for one or more pictures, and their mean embedding."""
    started = time.perf_counter()
    label_set = task.encode_labels(list(labels), (DEFAULT_TEMPLATE,))
    embeds = task.forward(task.preprocess(images, channel_order))
    probs = task.probabilities(embeds, label_set).mean(axis=0)
    embedding = normalize(embeds.mean(axis=0)).astype(np.float32)
    return PictureScores(tuple(labels), probs, embedding, len(images), (time.perf_counter() - started) * 1000)


class AvEvents:
    """Recognizes events from sound, picture, or both, with the loaded tasks it is given.

    Args:
        sound: The audio model's task (None when no sound will be given).
        picture: The zero-shot image task (None when no picture will be given).
    """

    def __init__(self, sound: SoundEventsTask | None, picture: ZeroShotTask | None) -> None:
        self.sound_task = sound
        self.picture_task = picture

    def __call__(
        self,
        audio=None,
        image=None,
        video=None,
        head=None,
        labels: str | list[str] | None = None,
        fusion: str = "late",
        audio_weight: float = DEFAULT_AUDIO_WEIGHT,
        channel_order: str = "RGB",
        hop_s: float | None = None,
        progress: Progress = no_progress,
    ) -> AvEventsResult:
        """Recognizes what is happening.

        Args:
            audio: A recording (file path of any length, bytes, (rate, array), `Waveform`), or None.
            image: A picture (path, bytes, PIL image or array), or None.
            video: A video file: its frames are the picture (unless `image` is given) and its sound track the sound
                (unless `audio` is given).
            head: The trained `FusionHead` for early/attention fusion.
            labels: Label text ("dog barking, door knock"): CLAP's and the picture's labels; with AST, typed labels
                that are AudioSet names join the labels in play.
            fusion: "late", "early" or "attention".
            audio_weight: Late fusion's weight of the sound, 0 to 1.
            channel_order: "BGR" for OpenCV camera frames.
            hop_s: Seconds between the sound's windows (default: one window, no overlap).
            progress: Receives fractions and sentences (long recordings take a while).

        Raises:
            StudioError: Nothing to recognize, bad input (a sentence says what), or early/attention without a head.
        """
        from studio.fusion.heads import FusionHeadError, late_fusion

        started = time.perf_counter()
        if fusion not in FUSIONS:
            raise StudioError(f"There is no “{fusion}” fusion; choose one of: {', '.join(FUSIONS)}.")
        if fusion != "late" and head is None:
            raise FusionHeadError(
                f"{fusion.capitalize()} fusion needs a trained fusion head, and none has been trained yet. "
                "Use late fusion, or teach a head with your labelled clips first."
            )
        if not 0.0 <= float(audio_weight) <= 1.0:
            raise StudioError(f"The sound's weight must be between 0 and 1, not {audio_weight}.")
        notices: list[str] = []
        sound_source = audio if audio is not None else video
        images = [image] if image is not None else None
        if images is None and video is not None:
            from studio.media.video import spread_frames

            images = spread_frames(video, VIDEO_FRAMES)
            channel_order = "RGB"
        if sound_source is None and images is None:
            raise NothingToRecognizeError(
                "There is nothing to recognise yet: give a sound (microphone, sound file or video), a picture "
                "(camera, photo or video), or both."
            )
        typed: list[str] = []
        if labels and (not isinstance(labels, str) or labels.strip()):
            typed, label_notices = parse_labels(labels)
            notices += label_notices
        if head is not None:
            typed = list(head.classes)

        sound = None
        if sound_source is not None:
            try:
                if self.sound_task is None:
                    if audio is None:  # a video: a silent film needs no sound model
                        from studio.media.audio import check_sound

                        check_sound(video)
                    raise StudioError("No sound model is loaded to listen with.")
                sound = self.sound_task(
                    sound_source,
                    typed if self.sound_task.takes_typed_labels else None,
                    hop_s=hop_s,
                    progress=scaled(progress, 0.0, 0.85 if images else 1.0),
                )
                notices += sound.notices
            except NoSoundTrackError:
                if audio is not None or images is None:
                    raise
                notices.append("The video has no sound track, so only its pictures were used.")
        else:
            notices.append("No sound was given, so only the picture was used.")

        if sound is not None and not self.sound_task.takes_typed_labels and head is None:
            in_play, more = ast_labels_in_play(sound, typed)
            notices += more
        else:
            if len(typed) < 2:
                parse_labels(typed)  # raises the sentence asking for (more) labels
            in_play = tuple(typed)

        picture = None
        if images is not None:
            if self.picture_task is None:
                raise StudioError("No image model is loaded to look with.")
            progress(0.9, f"Looking at {len(images)} picture{'s' if len(images) != 1 else ''}…")
            picture = score_picture(self.picture_task, images, in_play, channel_order)
        elif sound is not None:
            notices.append("No picture was given, so only the sound was used.")

        audio_probs = None
        if sound is not None:
            if self.sound_task.takes_typed_labels and head is None:
                audio_probs = sound.mean_scores()
            else:
                audio_probs = restricted_distribution(sound.mean_scores(), sound.labels, in_play)

        used_head = None
        if head is not None and sound is not None and picture is not None:
            audio_embed = sound.embedding()
            probs, shares = head.predict(audio_embed[None, :], picture.embedding[None, :])
            fused, contributions = probs[0], probs[0][:, None] * shares[0]
            mode, used_head = fusion, head.name
        elif head is not None:
            missing = "sound" if sound is None else "picture"
            notices.append(
                f"{fusion.capitalize()} fusion needs both the sound and the picture; without the {missing} the "
                f"{'picture' if sound is None else 'sound'} was used alone."
            )
            fused, contributions, mode = self._one_side(audio_probs, picture, len(in_play))
        elif sound is not None and picture is not None:
            w = float(audio_weight)
            fused = late_fusion(audio_probs, picture.probs, w)
            contributions = np.stack([w * audio_probs, (1.0 - w) * picture.probs], axis=1)
            mode = "late"
        else:
            fused, contributions, mode = self._one_side(audio_probs, picture, len(in_play))
        if not in_play:
            raise BadLabelsError("There are no labels to score; type a few, separated by commas.")
        return AvEventsResult(
            labels=in_play,
            fusion=mode,
            audio_weight=float(audio_weight),
            fused=np.asarray(fused, np.float64),
            contributions=np.asarray(contributions, np.float64),
            audio_probs=audio_probs,
            picture=picture,
            sound=sound,
            head=used_head,
            notices=notices,
            latency_ms=(time.perf_counter() - started) * 1000,
        )

    @staticmethod
    def _one_side(audio_probs, picture, n: int):
        if audio_probs is not None:
            return audio_probs, np.stack([audio_probs, np.zeros(n)], axis=1), "audio only"
        return picture.probs, np.stack([np.zeros(n), picture.probs], axis=1), "picture only"

    def clip_example(self, video, classes: tuple[str, ...], label: int, progress: Progress = no_progress):
        """A labelled clip's embeddings and per-modality probabilities over `classes`, for training fusion heads.

        Raises:
            BadAudioError: The clip has no usable sound (fusion heads need both sides).
        """
        from studio.fusion.heads import ClipExample
        from studio.media.video import spread_frames

        sound = self.sound_task(video, list(classes) if self.sound_task.takes_typed_labels else None, progress=progress)
        if self.sound_task.takes_typed_labels:
            audio_probs = sound.mean_scores()
        else:
            audio_probs = restricted_distribution(sound.mean_scores(), sound.labels, classes)
        picture = score_picture(self.picture_task, spread_frames(video, VIDEO_FRAMES), classes)
        return ClipExample(sound.embedding(), picture.embedding, audio_probs, picture.probs, label)
