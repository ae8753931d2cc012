"""What every `studio` sub-command shares: the command table's row type, common arguments, progress bars on stderr,
and JSON on stdout.

Heavy libraries (torch, transformers, onnxruntime, gradio) are imported inside the commands' handlers, so building
the parser stays light and `studio --help` answers at once.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

# Literal task names (studio.registry's tasks): building the parser must not import the registry's dependencies.
TASKS = ("zero-shot", "caption", "vqa", "speech-to-text", "video", "av-events", "read-text", "describe")
BACKENDS = ("auto", "onnx", "torch")
DEVICES = ("auto", "cpu", "cuda")


@dataclass(frozen=True)
class Command:
    """One sub-command: a row of a command table.

    Attributes:
        help: One line for `--help`.
        arguments: Adds the command's arguments to its parser.
        run: Does the job through a service and returns what to print as JSON (or an exit status, for a command
            that prints as it goes).
        say_notices: Also print the result's "notices" on stderr, one "studio: ..." line each.
    """

    help: str
    arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], dict | int]
    say_notices: bool = False


@dataclass(frozen=True)
class Group:
    """A sub-command with sub-commands of its own (`studio predict caption`), from a table of them."""

    help: str
    commands: dict[str, Command]
    dest: str
    description: str = field(default="")


def add_common(p: argparse.ArgumentParser, top: bool = False) -> None:
    """--models-dir and --verbose, on the top parser and on every sub-command."""
    # SUPPRESS keeps a sub-command's missing option from hiding the top-level one.
    default = None if top else argparse.SUPPRESS
    p.add_argument("--models-dir", type=Path, default=default, help="where exports and local model copies live")
    p.add_argument(
        "-v", "--verbose", action="store_true", default=False if top else argparse.SUPPRESS, help="log what happens"
    )


def add_serving(p: argparse.ArgumentParser, top: bool = True) -> None:
    """--serve, --ray-address and --serve-config: where the app's tasks run (the app, and `studio models`)."""
    if top:
        p.add_argument(
            "--serve",
            choices=("inprocess", "ray", "auto"),
            default=None,
            help="run each task in this process (default), on Ray Serve, or on Ray Serve when it can be reached",
        )
        p.add_argument(
            "--ray-address",
            default=None,
            metavar="ADDRESS",
            help="join this Ray cluster (auto, or ray://host:10001), not a new local one; implies --serve ray",
        )
    p.add_argument(
        "--serve-config",
        type=Path,
        default=None if top else argparse.SUPPRESS,
        metavar="FILE",
        help="a TOML file of per-task deployment settings (replicas, num_cpus, num_gpus, batching...)",
    )


def serving_plan(args: argparse.Namespace):
    """The `studio.serving.settings.ServingPlan` of --serve, --ray-address and --serve-config."""
    from studio.serving.settings import ServingPlan, read_config

    address = getattr(args, "ray_address", None)
    mode = getattr(args, "serve", None) or ("ray" if address else "inprocess")
    path = getattr(args, "serve_config", None)
    return ServingPlan(mode=mode, address=address, overrides=read_config(path) if path else {})


def add_runtime(p: argparse.ArgumentParser, variant: bool = True, help_model: str | None = None) -> None:
    """--model, --backend, --device (and --variant): which model runs, and on what."""
    p.add_argument(
        "--model", default=None, help=help_model or "hub id or local model folder (default: the task's default model)"
    )
    p.add_argument("--backend", choices=BACKENDS, default="auto")
    p.add_argument("--device", choices=DEVICES, default="auto")
    if variant:
        p.add_argument("--variant", choices=("fp32", "int8"), default="fp32", help="int8: the quantized model")


def runtime_of(args: argparse.Namespace):
    """The `studio.services.base.Runtime` of --model, --backend, --device and --variant."""
    from studio.services.base import Runtime

    return Runtime(
        model=getattr(args, "model", None),
        backend=getattr(args, "backend", "auto"),
        device=getattr(args, "device", "auto"),
        variant=getattr(args, "variant", "fp32"),
    )


def models_dir(args: argparse.Namespace) -> Path:
    """The models directory: --models-dir, else `studio.paths.default_models_dir()`."""
    from studio.paths import default_models_dir

    return Path(args.models_dir).expanduser().resolve() if args.models_dir else default_models_dir()


def loaded_models(args: argparse.Namespace):
    """The `studio.services.base.LoadedModels` a command's services share."""
    from studio.services.base import LoadedModels

    return LoadedModels(models_dir(args))


_open_bars: list = []  # progress bars to clear before an error sentence is printed


def tqdm_progress(title: str):
    """A `studio.progress.Progress` drawn with tqdm on stderr, from its first report on (a command that stops at a
    bad input before any work draws no bar)."""
    bars: list = []

    def progress(fraction: float, message: str) -> None:
        if not bars:
            from tqdm import tqdm

            bar_format = "{desc}: {percentage:3.0f}%|{bar}| {elapsed}"
            bars.append(tqdm(total=100, desc=title, file=sys.stderr, leave=False, bar_format=bar_format))
            _open_bars.append(bars[0])
        bar = bars[0]
        bar.set_description_str(f"{title}: {message}"[:100])
        bar.n = round(100 * max(0.0, min(1.0, fraction)))
        bar.refresh()
        if fraction >= 1.0:
            _close(bar)

    return progress


def close_bars() -> None:
    """Clears the progress bars still drawn (before an error sentence, so it is not hidden behind one)."""
    for bar in _open_bars:
        _close(bar)
    _open_bars.clear()


def _close(bar) -> None:
    """Closes a bar; an app launched in this process (`studio bench serve`) has gradio patch tqdm's close for its
    progress tracking, which fails on bars made before it."""
    try:
        bar.close()
    except AttributeError:
        bar.close = lambda: None  # tqdm closes again when collected


def say(sentence: str) -> None:
    """A sentence for the user on stderr."""
    print(f"studio: {sentence}", file=sys.stderr)


def print_json(data) -> None:
    """Plain data on stdout, as indented JSON."""
    json.dump(data, sys.stdout, indent=2, ensure_ascii=False, default=str)
    sys.stdout.write("\n")
    sys.stdout.flush()
