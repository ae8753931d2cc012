"""`studio ...`: sub-commands declared as tables of rows (`studio.cli.common.Command`), each parsing its arguments,
calling one service and returning plain data that is printed as JSON on stdout.

With no command, `studio` opens the app. Errors a user can meet print their sentence on stderr and exit with status 2.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from studio.cli.bench import BENCH
from studio.cli.common import (
    TASKS,
    Command,
    Group,
    add_common,
    add_serving,
    close_bars,
    models_dir,
    print_json,
    say,
    serving_plan,
)
from studio.cli.finetune import FINETUNE
from studio.cli.models import COMMANDS as MODEL_COMMANDS
from studio.cli.predict import PREDICT
from studio.cli.search import INDEX, SEARCH
from studio.cli.trial import TRIAL

COMMANDS: dict[str, Command | Group] = {
    "predict": Group("run a task on a file and print JSON", PREDICT, dest="task"),
    **{name: MODEL_COMMANDS[name] for name in ("listen", "export", "models", "download")},
    "bench": Group("benchmark ONNX Runtime against PyTorch on a full-size architecture", BENCH, dest="bench"),
    "finetune": Group("teach the zero-shot model your own classes from examples", FINETUNE, dest="finetune_command"),
    "trial": Group("export or summarize an accessibility trial's log", TRIAL, dest="trial_command"),
    "index": Group("build, update and inspect search indexes of your folders", INDEX, dest="index_command"),
    "search": SEARCH,
}


def build_parser() -> argparse.ArgumentParser:
    """The `studio` parser, built from the command tables."""
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
    parser.add_argument(
        "--trial-log",
        type=Path,
        default=None,
        metavar="DIR",
        help="log every output shown or spoken, and its rating, into DIR (accessibility trials; see `studio trial`)",
    )
    parser.add_argument(
        "--participant", default=None, metavar="CODE", help="the trial participant's code (e.g. P07), never a name"
    )
    parser.add_argument(
        "--keep-pictures", action="store_true", help="with --trial-log: keep each output's picture beside the log"
    )
    _add_sharing(parser)
    add_serving(parser)
    add_common(parser, top=True)
    sub = parser.add_subparsers(dest="command")
    for name, entry in COMMANDS.items():
        if isinstance(entry, Group):
            group = sub.add_parser(name, help=entry.help)
            rows = group.add_subparsers(dest=entry.dest, required=True)
            for row_name, row in entry.commands.items():
                _add_command(rows, row_name, row)
        else:
            _add_command(sub, name, entry)
    return parser


def _add_sharing(parser: argparse.ArgumentParser) -> None:
    """The options of an app shared with an audience (studio.sharing)."""
    parser.add_argument(
        "--shared",
        action="store_true",
        help="shared mode even on 127.0.0.1 (on by itself when --host is any other address): folders on this "
        "computer only under --allow-path, models from the list, request limits",
    )
    parser.add_argument(
        "--allow-path",
        action="append",
        default=[],
        type=Path,
        metavar="DIR",
        help="in shared mode, a folder visitors may name (model folders, folders of examples, index folders; "
        "repeatable)",
    )
    parser.add_argument(
        "--auth", action="append", default=[], metavar="USER:PASSWORD", help="ask visitors to log in (repeatable)"
    )
    parser.add_argument("--auth-file", type=Path, default=None, metavar="FILE", help="logins, one USER:PASSWORD a line")
    parser.add_argument(
        "--limit",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="change a shared app's request limit: upload_mb (500), photo_mb (25), video_seconds (600), "
        "audio_seconds (600), labels (50), label_chars (100), text_chars (10000), queue_per_event (8), "
        "per_visitor (1)",
    )


def _add_command(sub, name: str, command: Command) -> None:
    p = sub.add_parser(name, help=command.help)
    command.arguments(p)
    add_common(p)
    p.set_defaults(run=command)


def main(argv: list[str] | None = None) -> int:
    """Runs `studio` with `argv` (default: the command line); returns the exit status."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    from studio.errors import StudioError

    try:
        return _dispatch(args)
    except StudioError as exc:
        close_bars()
        say(str(exc))
        if getattr(exc, "details", ""):
            print(f"  {exc.details}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("studio: stopped.", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `studio models | head`
        return 0


def _dispatch(args) -> int:
    command: Command | None = getattr(args, "run", None)
    if command is None:
        _open_app(args)
        return 0
    result = command.run(args)
    if isinstance(result, int):
        return result
    if command.say_notices:
        for notice in result.get("notices") or []:
            say(notice)
    print_json(result)
    return 0


def _open_app(args) -> None:
    """Serves the app until interrupted, its tasks in this process or on Ray Serve (stopped afterwards)."""
    from studio.serving.cluster import start_serving
    from studio.sharing import parse_limits, parse_logins
    from studio.ui.app import launch

    app_models = _app_models(args.app_models)
    serving, said = start_serving(serving_plan(args), models_dir(args))
    if serving is not None or args.serve == "auto":
        say(said)
    try:
        launch(
            host=args.host,
            port=args.port,
            models_dir=models_dir(args),
            open_browser=not args.no_browser,
            models=app_models,
            trial_log=args.trial_log,
            participant=args.participant,
            keep_pictures=args.keep_pictures,
            shared=args.shared,
            allow_paths=args.allow_path,
            logins=parse_logins(args.auth, args.auth_file),
            limits=parse_limits(args.limit),
            serving=serving,
        )
    finally:
        if serving is not None:
            serving.shutdown()


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


if __name__ == "__main__":
    raise SystemExit(main())
