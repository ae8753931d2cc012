"""`studio ...`: thin sub-commands that parse arguments, call tasks, and print JSON on stdout.

Heavy libraries (torch, transformers, onnxruntime, gradio) are imported inside the commands, so `studio --help`
answers at once. Errors a user can meet print their sentence on stderr and exit with status 2.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

TASKS = ("zero-shot", "caption", "vqa", "speech-to-text", "video", "av-events")
_open_bars: list = []  # progress bars to clear before an error sentence is printed


def _add_common(p: argparse.ArgumentParser, top: bool = False) -> None:
    # Sub-commands take these too; SUPPRESS keeps a sub-command's missing option from hiding the top-level one.
    default = None if top else argparse.SUPPRESS
    p.add_argument("--models-dir", type=Path, default=default, help="where exports and local model copies live")
    p.add_argument(
        "-v", "--verbose", action="store_true", default=False if top else argparse.SUPPRESS, help="log what happens"
    )


def _add_runtime(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default=None, help="hub id or local model folder (default: the task's default model)")
    p.add_argument("--backend", choices=("auto", "onnx", "torch"), default="auto")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--variant", choices=("fp32", "int8"), default="fp32", help="int8: the quantized image encoder")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="studio",
        description="Multimodal Studio. With no command, opens the app in the browser.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to serve the app on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=7860, help="port to serve the app on (default 7860)")
    parser.add_argument("--no-browser", action="store_true", help="do not open a browser window")
    parser.add_argument(
        "--model",
        action="append",
        default=[],
        metavar="TASK=MODEL",
        dest="app_models",
        help="preselect a tab's model: a hub id or a local folder, e.g. zero-shot=/data/my-clip (repeatable)",
    )
    _add_common(parser, top=True)
    sub = parser.add_subparsers(dest="command")

    predict = sub.add_parser("predict", help="run a task on a file and print JSON")
    predict_sub = predict.add_subparsers(dest="task", required=True)
    zs = predict_sub.add_parser("zero-shot", help="classify an image against labels you type")
    zs.add_argument("--image", required=True, help="image file")
    zs_labels = zs.add_mutually_exclusive_group(required=True)
    zs_labels.add_argument("--labels", help='labels separated by commas, e.g. "cat,dog"')
    zs_labels.add_argument("--classifier", help="a saved custom classifier's name (see `studio finetune list`)")
    zs.add_argument(
        "--template", default=None, help='prompt template with {} for the label (default "a photo of a {}.")'
    )
    zs.add_argument("--ensemble", action="store_true", help="average several prompt templates (CLIP's set)")
    _add_runtime(zs)
    _add_common(zs)

    cap = predict_sub.add_parser("caption", help="describe an image in words")
    cap.add_argument("--image", required=True, help="image file")
    cap.add_argument("--prefix", default=None, help='words the caption must start with, e.g. "a photograph of"')
    cap.add_argument("--verbosity", choices=("short", "detailed"), default="short")
    cap.add_argument("--beams", type=int, default=None, help="beam search width (1 = greedy)")
    cap.add_argument("--max-new-tokens", type=int, default=None)
    cap.add_argument("--repetition-penalty", type=float, default=None)
    cap.add_argument("--no-repeat-ngram-size", type=int, default=None)
    cap.add_argument("--describe-people", action="store_true", help="keep words about people's age and looks")
    cap.add_argument(
        "--speak", type=Path, default=None, metavar="WAV", help="also write the spoken caption (espeak-ng)"
    )
    cap.add_argument("--rate", type=int, default=175, help="speaking rate in words per minute, with --speak")
    _add_runtime(cap)
    _add_common(cap)

    vqa = predict_sub.add_parser("vqa", help="answer a question about an image")
    vqa.add_argument("--image", required=True, help="image file")
    question = vqa.add_mutually_exclusive_group(required=True)
    question.add_argument("--question", help='the question, e.g. "what color is the cup?"')
    question.add_argument("--question-audio", type=Path, metavar="AUDIO", help="a recording of the question")
    vqa.add_argument("--top-k", type=int, default=5, help="how many answers to list")
    vqa.add_argument("--describe-people", action="store_true", help="keep words about people's age and looks")
    vqa.add_argument("--stt-model", default=None, help="speech-to-text model for --question-audio")
    _add_runtime(vqa)
    _add_common(vqa)

    stt = predict_sub.add_parser("speech-to-text", help="turn a recording into text")
    stt.add_argument("--audio", required=True, type=Path, help="audio file (wav, flac, ogg, mp3, or a video)")
    stt.add_argument("--model", default=None, help="hub id or local model folder")
    stt.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    _add_common(stt)

    video = predict_sub.add_parser("video", help="recognize the action in a video, window by window")
    video.add_argument("--video", required=True, type=Path, help="video file (mp4, avi, webm, mov, mkv)")
    video.add_argument(
        "--window-seconds", type=float, default=None, help="seconds per window (default: the model's clip length)"
    )
    video.add_argument(
        "--stride-seconds", type=float, default=None, help="seconds between window starts (default: the window)"
    )
    video.add_argument("--top-k", type=int, default=5, help="how many actions to list per window and overall")
    video.add_argument(
        "--labels", default=None, help='X-CLIP models only: the actions to look for, e.g. "waving, clapping, typing"'
    )
    _add_runtime(video)
    _add_common(video)

    av = predict_sub.add_parser("av-events", help="what is happening, from a sound, a picture, or both fused")
    av.add_argument("--audio", type=Path, default=None, help="sound file of any length (wav, flac, ogg, mp3...)")
    picture = av.add_mutually_exclusive_group()
    picture.add_argument("--image", type=Path, default=None, help="picture file")
    picture.add_argument(
        "--video", type=Path, default=None, help="video file: its frames, and its sound unless --audio"
    )
    av.add_argument("--labels", default=None, help='what to listen and look for, e.g. "dog barking,door knock"')
    av.add_argument("--fusion", choices=("late", "early", "attention"), default="late")
    av.add_argument("--audio-weight", type=float, default=0.5, help="late fusion: the sound's weight, 0 to 1")
    av.add_argument("--head", default=None, help="early/attention: the trained fusion head's name (default: newest)")
    av.add_argument("--image-model", default=None, help="zero-shot image model (hub id or folder) for the picture")
    av.add_argument("--hop", type=float, default=None, help="seconds between windows (default: one window)")
    _add_runtime(av)
    _add_common(av)

    listen = sub.add_parser("listen", help="recognize sounds from this computer's microphone as they happen")
    listen.add_argument("--model", default=None, help="sound model: hub id or local model folder")
    listen.add_argument("--labels", default=None, help='what to listen for (CLAP), e.g. "dog barking,door knock"')
    listen.add_argument("--window", type=float, default=5.0, help="seconds of sound each step hears (default 5)")
    listen.add_argument("--every", type=float, default=1.0, help="seconds between steps (default 1)")
    listen.add_argument("--seconds", type=float, default=None, help="stop after this many seconds of sound")
    listen.add_argument("--input-device", default=None, help="microphone: device index or name (default: the system's)")
    listen.add_argument("--file", type=Path, default=None, help="listen to a sound file as if it were the microphone")
    listen.add_argument("--backend", choices=("auto", "onnx", "torch"), default="auto")
    listen.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    _add_common(listen)

    export = sub.add_parser("export", help="export a task's model to ONNX (checked against PyTorch)")
    export.add_argument("task", choices=TASKS)
    export.add_argument("--model", default=None, help="hub id or local model folder")
    export.add_argument(
        "--out", type=Path, default=None, help="models directory to export into (default: --models-dir)"
    )
    export.add_argument("--quantize", choices=("int8",), default=None, help="also make a quantized image encoder")
    _add_common(export)

    models = sub.add_parser("models", help="list the registry's models and their state on this machine")
    models.add_argument("--task", choices=TASKS, default=None)
    _add_common(models)

    bench = sub.add_parser("bench", help="benchmark ONNX Runtime against PyTorch on a full-size architecture")
    bench.add_argument("task", choices=("zero-shot", "caption", "finetune", "video", "av-events"))
    bench.add_argument("--model", default=None, help="registry hub id whose architecture to build (random weights)")
    bench.add_argument("--runs", type=int, default=None, help="timed runs per measurement (default 30; av-events: 5)")
    bench.add_argument("--batch", type=int, default=8, help="batch size for the throughput measurement")
    bench.add_argument("--device", choices=("auto", "cpu", "cuda"), default="cpu")
    bench.add_argument("--no-int8", action="store_true", help="skip the int8 variant")
    _add_common(bench)

    from studio.finetune.commands import COMMANDS as FINETUNE_COMMANDS

    finetune = sub.add_parser("finetune", help="teach the zero-shot model your own classes from examples")
    finetune_sub = finetune.add_subparsers(dest="finetune_command", required=True)
    for name, command in FINETUNE_COMMANDS.items():
        p = finetune_sub.add_parser(name, help=command.help)
        command.arguments(p)
        _add_common(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    from studio.errors import StudioError

    try:
        return _dispatch(args)
    except StudioError as exc:
        for bar in _open_bars:
            bar.close()
        print(f"studio: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("studio: stopped.", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `studio models | head`
        return 0


def _models_dir(args) -> Path:
    from studio.paths import default_models_dir

    return Path(args.models_dir).expanduser().resolve() if args.models_dir else default_models_dir()


def _dispatch(args) -> int:
    if args.command is None:
        from studio.ui.app import launch

        launch(
            host=args.host,
            port=args.port,
            models_dir=_models_dir(args),
            open_browser=not args.no_browser,
            models=_app_models(args.app_models),
        )
        return 0
    if args.command == "predict":
        handlers = {
            "zero-shot": _predict_zero_shot,
            "caption": _predict_caption,
            "vqa": _predict_vqa,
            "speech-to-text": _predict_speech_to_text,
            "video": _predict_video,
            "av-events": _predict_av_events,
        }
        return handlers[args.task](args)
    if args.command == "export":
        return _export(args)
    if args.command == "models":
        return _models(args)
    if args.command == "listen":
        return _listen(args)
    if args.command == "finetune":
        from studio.finetune.commands import COMMANDS as FINETUNE_COMMANDS

        _print(FINETUNE_COMMANDS[args.finetune_command].run(args, _models_dir(args)))
        return 0
    if args.command == "bench":
        if args.task == "finetune":
            from studio.bench.finetune import run_bench as run_finetune_bench

            report = run_finetune_bench(
                model=args.model,
                runs=args.runs if args.runs is not None else 30,
                batch=args.batch,
                device=args.device,
                progress=_tqdm_progress("Benchmark"),
            )
        elif args.task == "video":
            from studio.bench.video import run_bench as run_video_bench

            report = run_video_bench(
                model=args.model,
                runs=args.runs if args.runs is not None else 30,
                device=args.device,
                progress=_tqdm_progress("Benchmark"),
            )
        elif args.task == "av-events":
            from studio.bench.av_events import run_bench as run_av_bench

            report = run_av_bench(
                model=args.model,
                runs=args.runs if args.runs is not None else 5,
                device=args.device,
                int8=not args.no_int8,
                progress=_tqdm_progress("Benchmark"),
            )
        elif args.task == "caption":
            from studio.bench.caption import run_bench as run_caption_bench

            report = run_caption_bench(
                model=args.model,
                runs=args.runs if args.runs is not None else 30,
                device=args.device,
                progress=_tqdm_progress("Benchmark"),
            )
        else:
            from studio.bench.zero_shot import run_bench

            report = run_bench(
                model=args.model,
                runs=args.runs if args.runs is not None else 30,
                batch=args.batch,
                device=args.device,
                int8=not args.no_int8,
                progress=_tqdm_progress("Benchmark"),
            )
        _print(report)
        return 0
    raise AssertionError(args.command)


def _app_models(pairs: list[str]) -> dict[str, str]:
    from studio.errors import StudioError

    models = {}
    for pair in pairs:
        task, sep, model = pair.partition("=")
        if not sep or task not in TASKS or not model:
            raise StudioError(
                f"--model takes TASK=MODEL with TASK one of {', '.join(TASKS)}, e.g. zero-shot=/data/my-clip."
            )
        models[task] = model
    return models


def _tqdm_progress(title: str):
    """A `studio.progress.Progress` drawn with tqdm on stderr."""
    from tqdm import tqdm

    bar = tqdm(
        total=100, desc=title, file=sys.stderr, leave=False, bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed}"
    )
    _open_bars.append(bar)

    def progress(fraction: float, message: str) -> None:
        bar.set_description_str(f"{title}: {message}"[:100])
        bar.n = round(100 * max(0.0, min(1.0, fraction)))
        bar.refresh()
        if fraction >= 1.0:
            bar.close()

    return progress


def _predict_zero_shot(args) -> int:
    from studio.tasks.zero_shot import TASK, ZeroShotTask, parse_labels, templates_for

    if args.classifier is not None:
        return _predict_with_classifier(args)
    parse_labels(args.labels)  # say what is wrong with the labels before loading a model
    templates = templates_for("ensemble" if args.ensemble else "single", args.template)
    task = ZeroShotTask.load(
        args.model,
        _models_dir(args),
        backend=args.backend,
        device=args.device,
        variant=args.variant,
        progress=_tqdm_progress("Loading"),
    )
    result = task(args.image, args.labels, templates=templates)
    for notice in task.graphs.notices + result.notices:
        print(f"studio: {notice}", file=sys.stderr)
    _print(
        {
            "task": TASK,
            "model": _model_name(task),
            **_runtime_fields(task.runtime),
            "latency_ms": round(result.latency_ms, 2),
            "text_encoding_ms": round(result.text_ms, 2),
            "templates": list(templates),
            "labels": result.labels,
            "notices": task.graphs.notices + result.notices,
        }
    )
    return 0


def _predict_with_classifier(args) -> int:
    from studio.errors import StudioError
    from studio.finetune.store import ClassifierStore
    from studio.finetune.training import classify
    from studio.media.image import load_image
    from studio.tasks.zero_shot import TASK, ZeroShotTask

    load_image(args.image)  # say what is wrong with the inputs before loading a model
    if args.template or args.ensemble:
        raise StudioError("A saved classifier keeps its own class prompts; leave out --template and --ensemble.")
    saved = ClassifierStore(_models_dir(args)).load(args.classifier)
    model = saved.head.get("model")
    if args.model and args.model != model:
        raise StudioError(
            f"“{saved.name}” was trained on {model or 'the default model'}; leave out --model to use that one."
        )
    task = ZeroShotTask.load(
        model,
        _models_dir(args),
        backend=args.backend,
        device=args.device,
        variant=args.variant,
        progress=_tqdm_progress("Loading"),
    )
    result = classify(task, saved, args.image)
    for notice in task.graphs.notices + result.notices:
        print(f"studio: {notice}", file=sys.stderr)
    _print(
        {
            "task": TASK,
            "model": _model_name(task),
            **_runtime_fields(task.runtime),
            "latency_ms": round(result.latency_ms, 2),
            "classifier": {
                "name": saved.name,
                "version": saved.version,
                "method": saved.head["method"],
                "blend": saved.head["blend"],
            },
            "labels": result.labels,
            "notices": task.graphs.notices + result.notices,
        }
    )
    return 0


def _runtime_fields(runtime) -> dict:
    return {
        "backend": "onnx" if runtime.engine == "ONNX Runtime" else "torch",
        "provider": runtime.providers[0] if runtime.providers else runtime.device.lower(),
        "runtime": runtime.as_dict(),
    }


def _predict_video(args) -> int:
    from studio.errors import StudioError
    from studio.media.video import open_video
    from studio.sources import resolve
    from studio.tasks.video import TASK, VideoTask, check_labels

    open_video(args.video)  # say what is wrong with the video and the actions before loading a model
    check_labels(args.labels, zero_shot=resolve(args.model, TASK, _models_dir(args)).family == "xclip")
    if args.variant != "fp32":
        raise StudioError("Video models have no int8 variant yet; leave out --variant.")
    if not 1 <= args.top_k <= 50:
        raise StudioError("--top-k must be between 1 and 50.")
    task = VideoTask.load(
        args.model, _models_dir(args), backend=args.backend, device=args.device, progress=_tqdm_progress("Loading")
    )
    for notice in task.graphs.notices:
        print(f"studio: {notice}", file=sys.stderr)
    result = task.classify_video(
        args.video,
        args.window_seconds,
        args.stride_seconds,
        top_k=args.top_k,
        progress=_tqdm_progress("Video"),
        labels=args.labels,
    )
    for notice in result.notices:
        print(f"studio: {notice}", file=sys.stderr)
    _print({"task": TASK, "model": _model_name(task), **_runtime_fields(task.runtime), **result.as_dict()})
    return 0


def _predict_caption(args) -> int:
    from dataclasses import replace

    from studio.media.image import load_image
    from studio.tasks.caption import TASK, VERBOSITY, CaptionTask, check_prefix, decoding_settings

    load_image(args.image)  # say what is wrong with the inputs before loading a model
    check_prefix(args.prefix)
    preset = VERBOSITY[args.verbosity]
    settings = decoding_settings(
        args.beams if args.beams is not None else preset.num_beams,
        args.max_new_tokens if args.max_new_tokens is not None else preset.max_new_tokens,
        args.repetition_penalty if args.repetition_penalty is not None else preset.repetition_penalty,
        args.no_repeat_ngram_size if args.no_repeat_ngram_size is not None else preset.no_repeat_ngram_size,
    )
    if args.beams is None and args.max_new_tokens is None:
        settings = replace(settings, min_new_tokens=preset.min_new_tokens)
    if args.variant != "fp32":
        from studio.errors import StudioError

        raise StudioError("Captioning models have no int8 variant yet; leave out --variant.")
    task = CaptionTask.load(
        args.model, _models_dir(args), backend=args.backend, device=args.device, progress=_tqdm_progress("Loading")
    )
    result = task(args.image, prefix=args.prefix, settings=settings, describe_people=args.describe_people)
    for notice in task.graphs.notices:
        print(f"studio: {notice}", file=sys.stderr)
    out = {"task": TASK, "model": _model_name(task), **_runtime_fields(task.runtime), **result.as_dict()}
    out["settings"] = {
        k: getattr(settings, k)
        for k in ("num_beams", "max_new_tokens", "repetition_penalty", "no_repeat_ngram_size", "min_new_tokens")
    }
    if args.speak:
        from studio.media.speech import synthesize

        wav = synthesize(result.text, Path(args.speak).resolve().parent, words_per_minute=args.rate)
        wav.replace(args.speak)
        out["speech"] = str(args.speak)
    out["notices"] = task.graphs.notices
    _print(out)
    return 0


def _transcribe(audio: Path, model: str | None, device: str, models_dir: Path):
    from studio.tasks.transcribe import TranscribeTask

    task = TranscribeTask.load(model, models_dir, device=device, progress=_tqdm_progress("Loading speech model"))
    return task, task(audio)


def _predict_speech_to_text(args) -> int:
    from studio.media.audio import load_audio

    load_audio(args.audio, 16000)  # say what is wrong with the recording before loading a model
    task, result = _transcribe(args.audio, args.model, args.device, _models_dir(args))
    _print({"task": "speech-to-text", "model": _model_name(task), **_runtime_fields(task.runtime), **result.as_dict()})
    return 0


def _predict_vqa(args) -> int:
    from studio.errors import StudioError
    from studio.media.image import load_image
    from studio.tasks.vqa import TASK, VqaTask, clean_question

    load_image(args.image)  # say what is wrong with the inputs before loading a model
    if args.variant != "fp32":
        raise StudioError("Question answering models have no int8 variant yet; leave out --variant.")
    heard = None
    if args.question_audio:
        from studio.media.audio import load_audio

        load_audio(args.question_audio, 16000)  # a silent or broken recording is refused before any model loads
        _, heard = _transcribe(args.question_audio, args.stt_model, args.device, _models_dir(args))
        question = heard.text
    else:
        question = clean_question(args.question)
    task = VqaTask.load(
        args.model, _models_dir(args), backend=args.backend, device=args.device, progress=_tqdm_progress("Loading")
    )
    result = task(args.image, question, top_k=args.top_k, describe_people=args.describe_people)
    for notice in task.graphs.notices:
        print(f"studio: {notice}", file=sys.stderr)
    out = {"task": TASK, "model": _model_name(task), **_runtime_fields(task.runtime), **result.as_dict()}
    if heard is not None:
        out["heard"] = heard.as_dict()
    out["notices"] = task.graphs.notices
    _print(out)
    return 0


def _predict_av_events(args) -> int:
    from studio.errors import StudioError
    from studio.media.audio import NoSoundTrackError, check_sound
    from studio.media.image import load_image
    from studio.tasks.av_events import TASK, AvEvents

    # Say what is wrong with the inputs before loading a model.
    if args.audio is None and args.image is None and args.video is None:
        raise StudioError("Give a sound (--audio), a picture (--image) or a video (--video), or a sound and a picture.")
    if not 0.0 <= args.audio_weight <= 1.0:
        raise StudioError(f"--audio-weight must be between 0 and 1, not {args.audio_weight:g}.")
    if args.audio is not None:
        check_sound(args.audio)
    if args.image is not None:
        load_image(args.image)
    sound_source = args.audio or args.video
    if args.audio is None and args.video is not None:
        from studio.media.video import open_video

        open_video(args.video)
        try:
            check_sound(args.video)
        except NoSoundTrackError:
            sound_source = None  # its pictures alone; the result says so
    models_dir = _models_dir(args)
    head = None
    if args.fusion != "late":
        from studio.finetune.fusion import find_head

        head = find_head(models_dir, args.fusion, args.head)
    sound = picture = None
    if sound_source is not None:
        from studio.tasks.sound_events import SoundEventsTask

        sound = SoundEventsTask.load(
            args.model,
            models_dir,
            backend=args.backend,
            device=args.device,
            variant=args.variant,
            progress=_tqdm_progress("Loading the sound model"),
        )
    if args.image is not None or args.video is not None:
        from studio.tasks.zero_shot import ZeroShotTask

        picture = ZeroShotTask.load(
            args.image_model,
            models_dir,
            backend=args.backend,
            device=args.device,
            variant=args.variant,
            progress=_tqdm_progress("Loading the image model"),
        )
    result = AvEvents(sound, picture)(
        audio=args.audio,
        image=args.image,
        video=args.video,
        labels=args.labels,
        fusion=args.fusion,
        audio_weight=args.audio_weight,
        head=head,
        hop_s=args.hop,
        progress=_tqdm_progress("Listening"),
    )
    notices = [*(sound.graphs.notices if sound else []), *(picture.graphs.notices if picture else []), *result.notices]
    for notice in notices:
        print(f"studio: {notice}", file=sys.stderr)
    out = {
        "task": TASK,
        "sound_model": _model_name(sound) if sound else None,
        "image_model": _model_name(picture) if picture else None,
        "runtime": {
            "sound": sound.runtime.as_dict() if sound else None,
            "picture": picture.runtime.as_dict() if picture else None,
        },
        **result.as_dict(),
    }
    out["notices"] = notices
    _print(out)
    return 0


def _listen(args) -> int:
    from studio.tasks.sound_events import RollingListener, SoundEventsTask, file_chunks, listen

    if args.window <= 0 or args.every <= 0:
        from studio.errors import StudioError

        raise StudioError("--window and --every must be more than 0 seconds.")
    if args.file is not None:
        from studio.media.audio import check_sound

        check_sound(args.file)
        chunks, where = file_chunks(args.file), f"the file {args.file.name}"
    else:
        from studio.media.microphone import input_device, microphone_chunks

        device = int(args.input_device) if str(args.input_device or "").isdigit() else args.input_device
        info = input_device(device)  # no microphone: one sentence, before any model loads
        chunks, where = microphone_chunks(device), f"the microphone “{info.get('name', 'default')}”"
    task = SoundEventsTask.load(
        args.model,
        _models_dir(args),
        backend=args.backend,
        device=args.device,
        progress=_tqdm_progress("Loading the sound model"),
    )
    listener = RollingListener(task, args.labels, window_s=args.window, every_s=args.every)
    print(f"studio: listening to {where} ({task.runtime.label}); Ctrl+C stops.", file=sys.stderr)
    for event in listen(chunks, listener, args.seconds):
        sys.stdout.write(json.dumps(event, ensure_ascii=False) + "\n")
        sys.stdout.flush()
    return 0


def _model_name(task) -> str:
    from studio.export.manifest import read_manifest

    manifest = read_manifest(Path(task.graphs.files_dir))
    if manifest:
        src = manifest["source"]
        return src.get("id") or src.get("path")
    return str(task.graphs.files_dir)


def _export(args) -> int:
    from studio.errors import StudioError
    from studio.export.exporter import export_model
    from studio.export.manifest import read_manifest
    from studio.export.quantize import quantize_export
    from studio.families import get_family
    from studio.sources import fetch, resolve

    models_dir = Path(args.out).expanduser().resolve() if args.out else _models_dir(args)
    source = resolve(args.model, args.task, models_dir)
    if args.quantize and not any(g.quantizable for g in get_family(source.family).GRAPHS):
        raise StudioError(f"{source.display_name} has no int8 variant yet; export it without --quantize.")
    progress = _tqdm_progress("Export")
    source = fetch(source, models_dir, on_progress=lambda m: progress(0.0, m))
    directory = export_model(source, models_dir, progress)
    if args.quantize:
        quantize_export(directory, _tqdm_progress("Quantize"))
    manifest = read_manifest(directory)
    _print({"export_dir": str(directory), "manifest": manifest})
    return 0


def _models(args) -> int:
    from studio.loading import model_state
    from studio.registry import REGISTRY
    from studio.sources import resolve

    models_dir = _models_dir(args)
    rows = []
    for spec in REGISTRY:
        if args.task and spec.task != args.task:
            continue
        state = model_state(resolve(spec.hub_id, spec.task, models_dir), models_dir)
        rows.append(
            {
                "task": spec.task,
                "title": spec.title,
                "licence": spec.licence,
                "default": spec.default,
                **state.as_dict(),
            }
        )
    _print({"models_dir": str(models_dir), "models": rows})
    return 0


def _print(data) -> None:
    json.dump(data, sys.stdout, indent=2, ensure_ascii=False, default=str)
    sys.stdout.write("\n")
    sys.stdout.flush()


if __name__ == "__main__":
    raise SystemExit(main())
