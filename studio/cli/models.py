"""`studio export`, `studio models`, `studio listen`: the commands beside predict."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from studio.cli.common import (
    BACKENDS,
    DEVICES,
    TASKS,
    Command,
    add_serving,
    models_dir,
    runtime_of,
    say,
    serving_plan,
    tqdm_progress,
)


def _export_args(p):
    p.add_argument("task", choices=TASKS)
    p.add_argument("--model", default=None, help="hub id or local model folder")
    p.add_argument("--out", type=Path, default=None, help="models directory to export into (default: --models-dir)")
    p.add_argument("--quantize", choices=("int8",), default=None, help="also make a quantized image encoder")


def _export(args) -> dict:
    from studio.export.manifest import read_manifest
    from studio.export.pipeline import export_for_task

    target = Path(args.out).expanduser().resolve() if args.out else models_dir(args)
    directory = export_for_task(args.task, args.model, target, bool(args.quantize), tqdm_progress("Export"))
    return {"export_dir": str(directory), "manifest": read_manifest(directory)}


def _models_args(p):
    p.add_argument("--task", choices=TASKS, default=None)
    add_serving(p, top=False)


def _models(args) -> dict:
    from studio.loading import registry_states

    plan = serving_plan(args)
    serving = {"mode": plan.mode, "address": plan.address, "deployments": plan.table()}
    if args.task:
        serving["deployments"] = {args.task: serving["deployments"].get(args.task) or plan.table_row(args.task)}
    return {
        "models_dir": str(models_dir(args)),
        "models": registry_states(models_dir(args), args.task),
        "serving": serving,
    }


def _download_args(p):
    p.add_argument("task", nargs="?", choices=TASKS, default=None, help="the task whose model to download")
    p.add_argument("--all", action="store_true", help="every task's default model (before a demo, to run offline)")
    p.add_argument("--model", default=None, help="a registry model of TASK other than its default (hub id)")


def _download(args) -> dict:
    """One task's model, or with --all every task's default; a model that cannot be had ends in its sentence."""
    from studio.downloads import download, download_all
    from studio.errors import StudioError

    if args.all == (args.task is not None):
        raise StudioError("Name one task to download its model (e.g. `studio download zero-shot`), or use --all.")
    if args.task is not None:
        row = download(args.task, models_dir(args), args.model, tqdm_progress("Download"))
        return {"models_dir": str(models_dir(args)), "models": [row], "failed": []}
    result = download_all(models_dir(args), progress=tqdm_progress("Download"))
    if result["failed"]:
        first = result["failed"][0]
        names = ", ".join(f["model"] for f in result["failed"])
        raise StudioError(
            f"{len(result['failed'])} of {len(result['models'])} models could not be downloaded: {names}. "
            + first["problem"],
            first["details"],
        )
    return {"models_dir": str(models_dir(args)), **result}


def _listen_args(p):
    p.add_argument("--model", default=None, help="sound model: hub id or local model folder")
    p.add_argument("--labels", default=None, help='what to listen for (CLAP), e.g. "dog barking,door knock"')
    p.add_argument("--window", type=float, default=5.0, help="seconds of sound each step hears (default 5)")
    p.add_argument("--every", type=float, default=1.0, help="seconds between steps (default 1)")
    p.add_argument("--seconds", type=float, default=None, help="stop after this many seconds of sound")
    p.add_argument("--input-device", default=None, help="microphone: device index or name (default: the system's)")
    p.add_argument("--file", type=Path, default=None, help="listen to a sound file as if it were the microphone")
    p.add_argument("--backend", choices=BACKENDS, default="auto")
    p.add_argument("--device", choices=DEVICES, default="auto")


def _listen(args) -> int:
    """Prints one JSON line per step as the sound arrives (a stream, not one JSON document)."""
    from studio.cli.common import loaded_models
    from studio.errors import StudioError
    from studio.services.sound_scene import SoundSceneService
    from studio.tasks.sound_events import file_chunks, listen

    if args.window <= 0 or args.every <= 0:
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
    listener = SoundSceneService(loaded_models(args)).listener(
        args.labels,
        window_s=args.window,
        every_s=args.every,
        runtime=runtime_of(args),
        progress=tqdm_progress("Loading the sound model"),
    )
    say(f"listening to {where} ({listener.task.runtime.label}); Ctrl+C stops.")
    for event in listen(chunks, listener, args.seconds):
        sys.stdout.write(json.dumps(event, ensure_ascii=False) + "\n")
        sys.stdout.flush()
    return 0


COMMANDS: dict[str, Command] = {
    "listen": Command("recognize sounds from this computer's microphone as they happen", _listen_args, _listen),
    "export": Command("export a task's model to ONNX (checked against PyTorch)", _export_args, _export),
    "models": Command("list the registry's models and their state on this machine", _models_args, _models),
    "download": Command(
        "download a task's model, or --all, before a demo (then it runs offline)", _download_args, _download
    ),
}
