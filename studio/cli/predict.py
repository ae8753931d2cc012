"""`studio predict TASK ...`: one row per task (its arguments, and the call of its service). JSON on stdout."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from studio.cli.common import DEVICES, Command, add_runtime, loaded_models, runtime_of, tqdm_progress

# zero-shot ---------------------------------------------------------------------------------------------------------


def _zero_shot_args(p):
    p.add_argument("--image", required=True, help="image file")
    labels = p.add_mutually_exclusive_group(required=True)
    labels.add_argument("--labels", help='labels separated by commas, e.g. "cat,dog"')
    labels.add_argument("--classifier", help="a saved custom classifier's name (see `studio finetune list`)")
    p.add_argument(
        "--template", default=None, help='prompt template with {} for the label (default "a photo of a {}.")'
    )
    p.add_argument("--ensemble", action="store_true", help="average several prompt templates (CLIP's set)")
    add_runtime(p)


def _zero_shot(args) -> dict:
    from studio.errors import StudioError
    from studio.services.zero_shot import ZeroShotService

    if args.classifier is not None and (args.template or args.ensemble):
        raise StudioError("A saved classifier keeps its own class prompts; leave out --template and --ensemble.")
    return ZeroShotService(loaded_models(args))(
        args.image,
        args.labels,
        classifier=args.classifier,
        template_mode="ensemble" if args.ensemble else "single",
        template=args.template,
        runtime=runtime_of(args),
        progress=tqdm_progress("Zero-shot"),
    )


# caption -----------------------------------------------------------------------------------------------------------


def _caption_args(p):
    p.add_argument("--image", required=True, help="image file")
    p.add_argument("--prefix", default=None, help='words the caption must start with, e.g. "a photograph of"')
    p.add_argument("--verbosity", choices=("short", "detailed"), default="short")
    p.add_argument("--beams", type=int, default=None, help="beam search width (1 = greedy)")
    p.add_argument("--max-new-tokens", type=int, default=None)
    p.add_argument("--repetition-penalty", type=float, default=None)
    p.add_argument("--no-repeat-ngram-size", type=int, default=None)
    p.add_argument("--describe-people", action="store_true", help="keep words about people's age and looks")
    p.add_argument("--speak", type=Path, default=None, metavar="WAV", help="also write the spoken caption (espeak-ng)")
    p.add_argument("--rate", type=int, default=175, help="speaking rate in words per minute, with --speak")
    add_runtime(p)


def _caption(args) -> dict:
    from studio.services.caption import CaptionService

    decoding = ("prefix", "verbosity", "beams", "max_new_tokens", "repetition_penalty", "no_repeat_ngram_size")
    out = CaptionService(loaded_models(args))(
        args.image,
        **_options(args, *decoding, "describe_people"),
        runtime=runtime_of(args),
        progress=tqdm_progress("Caption"),
    )
    if args.speak:
        from studio.media.speech import synthesize

        wav = synthesize(out["caption"], Path(args.speak).resolve().parent, words_per_minute=args.rate)
        wav.replace(args.speak)
        out["speech"] = str(args.speak)
    return out


# vqa ---------------------------------------------------------------------------------------------------------------


def _vqa_args(p):
    p.add_argument("--image", required=True, help="image file")
    question = p.add_mutually_exclusive_group(required=True)
    question.add_argument("--question", help='the question, e.g. "what color is the cup?"')
    question.add_argument("--question-audio", type=Path, metavar="AUDIO", help="a recording of the question")
    p.add_argument("--top-k", type=int, default=5, help="how many answers to list")
    p.add_argument("--describe-people", action="store_true", help="keep words about people's age and looks")
    p.add_argument("--stt-model", default=None, help="speech-to-text model for --question-audio")
    add_runtime(p)


def _vqa(args) -> dict:
    from studio.services.ask import AskService

    return AskService(loaded_models(args))(
        args.image,
        args.question,
        question_audio=args.question_audio,
        top_k=args.top_k,
        describe_people=args.describe_people,
        runtime=runtime_of(args),
        stt_model=args.stt_model,
        progress=tqdm_progress("Question"),
    )


# speech-to-text ----------------------------------------------------------------------------------------------------


def _speech_to_text_args(p):
    p.add_argument("--audio", required=True, type=Path, help="audio file (wav, flac, ogg, mp3, or a video)")
    p.add_argument("--model", default=None, help="hub id or local model folder")
    p.add_argument("--device", choices=DEVICES, default="auto")


def _speech_to_text(args) -> dict:
    from studio.services.transcribe import TranscribeService

    return TranscribeService(loaded_models(args))(
        args.audio, runtime=runtime_of(args), progress=tqdm_progress("Speech to text")
    )


# video -------------------------------------------------------------------------------------------------------------


def _video_args(p):
    p.add_argument("--video", required=True, type=Path, help="video file (mp4, avi, webm, mov, mkv)")
    p.add_argument(
        "--window-seconds", type=float, default=None, help="seconds per window (default: the model's clip length)"
    )
    p.add_argument("--stride-seconds", type=float, default=None, help="seconds between window starts (default: window)")
    p.add_argument("--top-k", type=int, default=5, help="how many actions to list per window and overall")
    p.add_argument(
        "--labels", default=None, help='X-CLIP models only: the actions to look for, e.g. "waving, clapping, typing"'
    )
    add_runtime(p)


def _video(args) -> dict:
    from studio.errors import StudioError
    from studio.services.video import VideoService

    if not 1 <= args.top_k <= 50:
        raise StudioError("--top-k must be between 1 and 50.")
    return VideoService(loaded_models(args))(
        args.video,
        window_seconds=args.window_seconds,
        stride_seconds=args.stride_seconds,
        top_k=args.top_k,
        labels=args.labels,
        runtime=runtime_of(args),
        progress=tqdm_progress("Video"),
    )


# av-events ---------------------------------------------------------------------------------------------------------


def _av_events_args(p):
    p.add_argument("--audio", type=Path, default=None, help="sound file of any length (wav, flac, ogg, mp3...)")
    picture = p.add_mutually_exclusive_group()
    picture.add_argument("--image", type=Path, default=None, help="picture file")
    picture.add_argument(
        "--video", type=Path, default=None, help="video file: its frames, and its sound unless --audio"
    )
    p.add_argument("--labels", default=None, help='what to listen and look for, e.g. "dog barking,door knock"')
    p.add_argument("--fusion", choices=("late", "early", "attention"), default="late")
    p.add_argument("--audio-weight", type=float, default=0.5, help="late fusion: the sound's weight, 0 to 1")
    p.add_argument("--head", default=None, help="early/attention: the trained fusion head's name (default: newest)")
    p.add_argument("--image-model", default=None, help="zero-shot image model (hub id or folder) for the picture")
    p.add_argument("--hop", type=float, default=None, help="seconds between windows (default: one window)")
    add_runtime(p, help_model="sound model: hub id or local model folder (default: AST)")


def _av_events(args) -> dict:
    from studio.errors import StudioError
    from studio.services.sound_scene import SoundSceneService

    if args.audio is None and args.image is None and args.video is None:
        raise StudioError("Give a sound (--audio), a picture (--image) or a video (--video), or a sound and a picture.")
    if not 0.0 <= args.audio_weight <= 1.0:
        raise StudioError(f"--audio-weight must be between 0 and 1, not {args.audio_weight:g}.")
    return SoundSceneService(loaded_models(args))(
        **_options(args, "audio", "image", "video", "labels", "fusion", "audio_weight", "head"),
        hop_seconds=args.hop,
        sound=runtime_of(args),
        picture=replace(runtime_of(args), model=args.image_model),
        progress=tqdm_progress("Listening and looking"),
    )


# read-text ---------------------------------------------------------------------------------------------------------


def _read_text_args(p):
    p.add_argument("--image", required=True, help="image file (a photo of a label, a sign, a screen, a letter)")
    p.add_argument(
        "--min-confidence",
        type=float,
        default=None,
        help="leave out lines read with a lower confidence, 0 to 1 (default: the model's 0.5)",
    )
    p.add_argument(
        "--spaces-as-read", action="store_true", help="do not put back spaces the recognizer left out between words"
    )
    add_runtime(p, variant=False, help_model="the OCR model (default: PP-OCRv4 from the rapidocr-onnxruntime package)")


def _read_text(args) -> dict:
    from studio.services.read_text import ReadTextService

    return ReadTextService(loaded_models(args))(
        args.image,
        min_confidence=args.min_confidence,
        restore_spaces=not args.spaces_as_read,
        runtime=runtime_of(args),
        progress=tqdm_progress("Reading"),
    )


# describe ----------------------------------------------------------------------------------------------------------


def _describe_args(p):
    p.add_argument("--image", required=True, help="image file")
    p.add_argument("--detail", action="store_true", help="a description in a few sentences (default: one sentence)")
    p.add_argument(
        "--question",
        action="append",
        default=None,
        help="a question about the picture; repeat it for a conversation, each answered with the earlier ones",
    )
    p.add_argument("--describe-people", action="store_true", help="keep words about people's age and looks")
    p.add_argument(
        "--no-split", action="store_true", help="look at the whole picture once instead of in tiles (faster)"
    )
    p.add_argument("--max-new-tokens", type=int, default=None)
    add_runtime(p, help_model="the vision-language model (default: SmolVLM 256M Instruct)")


def _describe(args) -> dict:
    from studio.services.describe import DescribeService

    service = DescribeService(loaded_models(args))
    common = dict(
        describe_people=args.describe_people,
        split=False if args.no_split else None,
        max_new_tokens=args.max_new_tokens,
        runtime=runtime_of(args),
        progress=tqdm_progress("Describing"),
    )
    if not args.question:
        return service(args.image, detail=args.detail, **common)
    history, turns = [], []
    for question in args.question:
        out = service(args.image, question=question, history=history, **common)
        history = out["history"]
        turns.append({k: out[k] for k in ("question", "text", "tokens", "time_to_first_token_ms", "confidence")})
    return {**out, "turns": turns}


def _options(args, *names: str) -> dict:
    """The arguments of these names, as keyword arguments of a service (they share their names)."""
    return {name: getattr(args, name) for name in names}


PREDICT: dict[str, Command] = {
    "zero-shot": Command("classify an image against labels you type", _zero_shot_args, _zero_shot, True),
    "caption": Command("describe an image in words", _caption_args, _caption, True),
    "vqa": Command("answer a question about an image", _vqa_args, _vqa, True),
    "speech-to-text": Command("turn a recording into text", _speech_to_text_args, _speech_to_text, True),
    "video": Command("recognize the action in a video, window by window", _video_args, _video, True),
    "av-events": Command(
        "what is happening, from a sound, a picture, or both fused", _av_events_args, _av_events, True
    ),
    "read-text": Command(
        "read the text in an image: lines with boxes, in reading order", _read_text_args, _read_text, True
    ),
    "describe": Command(
        "describe a picture in sentences, or answer questions about it in a conversation (SmolVLM)",
        _describe_args,
        _describe,
        True,
    ),
}
