"""`studio index build|update|info|list|remove` and `studio search NAME --text|--image`, `studio search eval --pairs`:
command tables over `studio.services.search.SearchService`. JSON on stdout.

Ctrl-C while an index is built stops it the way the tab's Stop button does: the files finished so far are saved.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from studio.cli.common import BACKENDS, DEVICES, Command, loaded_models, runtime_of, tqdm_progress


def _service(args):
    from studio.services.search import SearchService

    return SearchService(loaded_models(args))


def _runtime_args(p, model_help: str) -> None:
    p.add_argument("--model", default=None, help=model_help)
    p.add_argument("--backend", choices=BACKENDS, default="auto")
    p.add_argument("--device", choices=DEVICES, default="auto")


@contextlib.contextmanager
def _stop_on_ctrl_c():
    """Yields a should_stop callable that turns True at the first Ctrl-C (a second one interrupts at once)."""
    import signal

    pressed = []

    def handler(signum, frame):
        if pressed:
            raise KeyboardInterrupt
        pressed.append(True)

    try:
        previous = signal.signal(signal.SIGINT, handler)
    except ValueError:  # not the main thread
        yield lambda: False
        return
    try:
        yield lambda: bool(pressed)
    finally:
        signal.signal(signal.SIGINT, previous)


# index ------------------------------------------------------------------------------------------------------------


def _build_args(p):
    p.add_argument("name", help="the index's name, e.g. “holiday photos”")
    p.add_argument("--folder", type=Path, default=None, help="the folder to index (update: default its own folder)")
    p.add_argument(
        "--frame-every", type=float, default=None, metavar="SECONDS", help="keep a video frame every SECONDS (2)"
    )
    p.add_argument("--rebuild", action="store_true", help="embed every file again (after choosing another model)")
    p.add_argument(
        "--ray",
        nargs="?",
        const="local",
        default=None,
        metavar="ADDRESS",
        help="embed the photos with Ray Data: a local instance, or ADDRESS (auto, ray://host:10001)",
    )
    _runtime_args(p, "zero-shot model for photos and videos, or a CLAP model for sounds (default: the index's own)")


def _build(args) -> dict:
    service = _service(args)
    run = service.update if args.command_name == "update" else service.build
    with _stop_on_ctrl_c() as should_stop:
        return run(
            args.name,
            args.folder,
            runtime=runtime_of(args),
            frame_every_s=args.frame_every,
            rebuild=args.rebuild,
            ray_address=args.ray,
            progress=tqdm_progress("Indexing"),
            should_stop=should_stop,
        )


def _name_args(p):
    p.add_argument("name", help="the index's name")


def _info(args) -> dict:
    return _service(args).info(args.name)


def _remove(args) -> dict:
    return _service(args).remove(args.name)


def _list(args) -> dict:
    return {"indexes": _service(args).names()}


def _with_name(run, name: str):
    def add(p):
        p.set_defaults(command_name=name)
        run(p)

    return add


INDEX: dict[str, Command] = {
    "build": Command(
        "index a folder's photos, videos (a frame every 2 s) or, with a CLAP model, sounds",
        _with_name(_build_args, "build"),
        _build,
        say_notices=True,
    ),
    "update": Command(
        "bring an index up to date: embed new or changed files, drop removed ones",
        _with_name(_build_args, "update"),
        _build,
        say_notices=True,
    ),
    "info": Command("what an index holds, its model and its FAISS index", _name_args, _info),
    "list": Command("the indexes kept here", lambda p: None, _list),
    "remove": Command("delete an index (never the files it was built from)", _name_args, _remove),
}


# search -----------------------------------------------------------------------------------------------------------


def _search_args(p):
    p.add_argument("name", help="the index to search, or `eval` to measure Recall@K on image-caption pairs")
    query = p.add_mutually_exclusive_group()
    query.add_argument("--text", default=None, help='words to look for, e.g. "a dog on a beach"')
    query.add_argument("--image", type=Path, default=None, help="a photo to find ones like it")
    query.add_argument("--pairs", type=Path, default=None, help="with eval: CSV of `image path, caption` rows")
    p.add_argument("--top-k", type=int, default=10, help="how many results (default 10)")
    p.add_argument("--plot", type=Path, default=None, help="with eval: write recall against K as a PNG here")
    _runtime_args(p, "with eval: the zero-shot model to measure; else the index's own model (another is refused)")


def _search(args) -> dict:
    from studio.errors import StudioError

    service = _service(args)
    if args.name == "eval":
        if args.pairs is None:
            raise StudioError("`studio search eval` needs --pairs PAIRS.csv (image path, caption rows).")
        return service.evaluate(
            args.pairs, runtime=runtime_of(args), plot=args.plot, progress=tqdm_progress("Measuring recall")
        )
    if args.pairs is not None or args.plot is not None:
        raise StudioError("--pairs and --plot go with `studio search eval`; to search an index give --text or --image.")
    if args.text is None and args.image is None:
        raise StudioError(f'Say what to look for in “{args.name}”: --text "words" or --image PHOTO.')
    if args.image is not None and not args.image.is_file():
        raise StudioError(f"The photo {args.image} was not found.")
    return service.search(
        args.name,
        text=args.text,
        image=args.image,
        top_k=args.top_k,
        runtime=runtime_of(args),
        progress=tqdm_progress("Search"),
    )


SEARCH = Command(
    "find photos, video moments or sounds in an index by --text or --image; `search eval --pairs` for Recall@K",
    _search_args,
    _search,
    say_notices=True,
)
