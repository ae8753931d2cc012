"""Sound & scene: what is happening, from a sound, a picture or a video, fused; live listening; teaching the
fusion heads."""

from __future__ import annotations

from studio.progress import Progress, no_progress, scaled
from studio.services.base import Runtime, Service, ran_on

TASK = "av-events"
PICTURE_TASK = "zero-shot"


class SoundSceneService(Service):
    """Recognizes events from sound and picture: the whole job behind the Sound & scene tab, `studio predict
    av-events` and `studio listen`. Its `task` is the sound model's (AST or CLAP)."""

    TASK_CLASS = "studio.tasks.sound_events:SoundEventsTask"

    def picture_task(self, runtime: Runtime = Runtime(), progress: Progress | None = None):
        """The loaded zero-shot image model's task (CLIP), which scores the picture."""
        from studio.tasks.zero_shot import ZeroShotTask

        return self.models.get(ZeroShotTask, runtime, progress)

    def heads(self, fusion: str) -> list[dict]:
        """The trained fusion heads of a kind ("early", "attention"), newest first: [{"name", "label"}]."""
        from studio.fusion.store import list_heads

        return [{"name": h.name, "label": h.label} for h in list_heads(self.models.models_dir, fusion)]

    def __call__(
        self,
        *,
        audio=None,
        image=None,
        video=None,
        labels: str | list[str] | None = None,
        fusion: str = "late",
        audio_weight: float = 0.5,
        head: str | None = None,
        late_if_untrained: bool = False,
        hop_seconds: float | None = None,
        sound: Runtime = Runtime(),
        picture: Runtime = Runtime(),
        channel_order: str = "RGB",
        progress: Progress = no_progress,
    ) -> dict:
        """Recognizes what is happening in a sound and/or a picture, or a video (its frames and its sound track).

        Args:
            audio: A recording of any length (path, bytes, (rate, array)), or None.
            image: A picture (path, bytes, PIL image or array), or None.
            video: A video file: its frames are the picture (unless `image`) and its track the sound (unless
                `audio`); a silent film is looked at only.
            labels: What to listen and look for ("dog barking, door knock"): CLAP's and the picture's labels; with
                AST, typed labels that are AudioSet names join the labels it heard most.
            fusion: "late", "early" or "attention" (the last two need a trained head).
            audio_weight: Late fusion's weight of the sound, 0 to 1.
            head: The trained head's name (None: the newest of that kind).
            late_if_untrained: With no trained head for early/attention fusion, use late fusion and say so (instead
                of refusing).
            hop_seconds: Seconds between the sound's windows (None: one window, no overlap).
            sound: The sound model (AST or CLAP) and what it runs on.
            picture: The zero-shot image model (CLIP) and what it runs on.
            channel_order: "BGR" for OpenCV camera frames.
            progress: Receives fractions and sentences (long recordings take a while).

        Returns:
            {"task", "sound_model", "image_model", "runtime": {"sound", "picture"}, "labels_in_play", "fusion",
            "audio_weight", "fused": [{"label", "score", "audio", "picture"}], "audio", "picture", "head",
            "latency_ms", "notices"}, with "picture_frames" and "sound": {"kind", "duration_s", "window_s",
            "summary", "events", "timeline": {"labels", "scores" (one row per label: its score in each window)}}
            when given.

        Raises:
            StudioError: Nothing to recognize, a bad input, or early/attention fusion without a trained head (unless
                `late_if_untrained`); the inputs are checked before any model loads.
        """
        from studio.media.audio import NoSoundTrackError, check_sound
        from studio.media.image import load_image
        from studio.tasks.av_events import AvEvents

        notices: list[str] = []
        from studio.media.text import typed_items

        self.models.sharing.check_labels(typed_items(labels))
        if audio is not None:
            check_sound(audio)  # say what is wrong with the inputs before loading a model
        if image is not None:
            image = load_image(image, channel_order)
        sound_source = audio if audio is not None else video
        if audio is None and video is not None:
            from studio.media.video import open_video

            open_video(video)
            try:
                check_sound(video)
            except NoSoundTrackError:
                sound_source = None  # its pictures alone; the result says so
        chosen_head, fusion = self._head(fusion, head, late_if_untrained, notices)
        hearing = looking = None
        if sound_source is not None:
            hearing = self.task(sound, progress)
            notices += hearing.graphs.notices
        if image is not None or video is not None:
            looking = self.picture_task(picture, progress)
            notices += looking.graphs.notices
        media = {"audio": audio, "image": image, "video": video}
        choices = {"labels": labels, "fusion": fusion, "audio_weight": float(audio_weight), "hop_s": hop_seconds}
        result = AvEvents(hearing, looking)(**media, **choices, head=chosen_head, progress=progress)
        out = {
            "task": TASK,
            "sound_model": ran_on(hearing)["model"] if hearing else None,
            "image_model": ran_on(looking)["model"] if looking else None,
            "runtime": {
                "sound": hearing.runtime.as_dict() if hearing else None,
                "picture": looking.runtime.as_dict() if looking else None,
            },
            **result.as_dict(),
        }
        out["notices"] = notices + result.notices
        if result.sound is not None:
            summary = [s["label"] for s in result.sound.summary()]
            index = {label: i for i, label in enumerate(result.sound.labels)}
            out["sound"]["timeline"] = {
                "labels": summary,
                "scores": [
                    [float(w.scores[index[n]]) if w.scores is not None else 0.0 for w in result.sound.windows]
                    for n in summary
                ],
            }
        return out

    def _head(self, fusion: str, name: str | None, late_if_untrained: bool, notices: list[str]):
        """The trained head for early/attention fusion (None for late), and the fusion to use."""
        from studio.fusion.heads import FusionHeadError
        from studio.fusion.store import find_head

        if fusion == "late":
            return None, fusion
        try:
            return find_head(self.models.models_dir, fusion, name or None), fusion
        except FusionHeadError as exc:
            if not late_if_untrained:
                raise
            notices.append(f"{exc} Showing late fusion instead.")
            return None, "late"

    def listener(
        self,
        labels: str | list[str] | None = None,
        *,
        window_s: float = 5.0,
        every_s: float = 1.0,
        runtime: Runtime = Runtime(),
        progress: Progress | None = None,
    ):
        """A live listener (`studio.tasks.sound_events.RollingListener`): feed it microphone chunks, it hears the
        last `window_s` seconds every `every_s` seconds of new sound.

        Raises:
            StudioError: Bad window settings, or CLAP without labels to listen for.
        """
        from studio.errors import StudioError
        from studio.media.text import typed_items
        from studio.tasks.sound_events import RollingListener

        if window_s <= 0 or every_s <= 0:
            raise StudioError("The window and the time between steps must be more than 0 seconds.")
        self.models.sharing.check_labels(typed_items(labels))
        task = self.task(runtime, progress)
        return RollingListener(task, labels, window_s=window_s, every_s=every_s)

    def teach(
        self,
        folder,
        name: str,
        *,
        audio_weight: float = 0.5,
        sound: Runtime = Runtime(),
        picture: Runtime = Runtime(),
        progress: Progress = no_progress,
    ) -> dict:
        """Trains both fusion heads on a folder of labelled clips (one sub-folder of videos per class), compares them
        with late fusion on held-out clips, and saves them.

        Each clip is heard and looked at by the chosen models; both heads learn from a stratified part of the clips.

        Returns:
            {"name", "evaluation": {"train_clips", "held_out_clips", "accuracy": {"early", "attention", "late",
            "audio_only", "picture_only"}, "audio_weight", "classes"}, "saved": [folders]}.

        Raises:
            StudioError: The folder, a clip or the name is unusable (the sentence says which).
        """
        from studio.fusion.heads import FusionHeadError, collect_clips, train_and_compare
        from studio.fusion.store import clean_head_name, save_head
        from studio.media.audio import BadAudioError
        from studio.tasks.av_events import AvEvents

        name = clean_head_name(name)
        classes, clips = collect_clips(folder)
        av = AvEvents(self.task(sound, progress), self.picture_task(picture, progress))
        examples = []
        for i, (path, label) in enumerate(clips):
            progress(0.8 * i / len(clips), f"Hearing and looking at clip {i + 1} of {len(clips)} ({path.name})…")
            try:
                examples.append(av.clip_example(path, classes, label))
            except BadAudioError as exc:
                raise FusionHeadError(f"The clip {path.name} cannot be used: {exc}") from exc
        heads, evaluation = train_and_compare(
            examples,
            classes,
            sound.model or "",
            picture.model or "",
            audio_weight=audio_weight,
            progress=scaled(progress, 0.8, 0.98),
        )
        saved = [save_head(head, self.models.models_dir, name) for head in heads.values()]
        progress(1.0, "Saved the fusion heads.")
        return {"name": name, "evaluation": evaluation, "saved": [str(folder) for folder in saved]}
