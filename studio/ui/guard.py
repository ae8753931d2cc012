"""What keeps the app serving whatever a visitor sends: every event's handler guarded, the queue limited.

- `guard_events`: every handler of the app is wrapped so that (in shared mode) over-long texts, photos over the photo
  limit and recordings over the length limits are refused with a sentence before the handler runs, and so that an
  unexpected failure reaches the visitor as one sentence (its traceback goes to the server's log only), whatever the
  handler's kind (plain, generator, async).
- `limit_queue` (shared mode): a button whose waiting requests reach `Limits.queue_per_event` answers "busy, try
  again in a moment" at once instead of queueing for ever, and one visitor (a browser session, or a login) may have
  `Limits.per_visitor` requests of one kind waiting or running (a camera stream counts once).

The checks themselves live in `studio.sharing` (no gradio there); this module only applies them to gradio's events.
"""

from __future__ import annotations

import functools
import inspect
import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import gradio as gr

from studio.errors import StudioError
from studio.sharing import ALREADY_RUNNING, BUSY, SharingPolicy

log = logging.getLogger(__name__)

UNEXPECTED = (
    "Something went wrong with this request and it was stopped; the app keeps working. "
    "Check what you gave it (a file of the right kind, numbers in range) and try again."
)


NOT_ACCEPTED = "One of the inputs is not of the kind this app expects, so nothing was run"
NOT_SHOWN = "The result could not be shown; the app keeps working. Try again with other input."


def guard_events(demo: gr.Blocks, sharing: SharingPolicy) -> int:
    """Wraps every event handler of `demo` (see the module's docstring), and gradio's own conversion of inputs and
    outputs, so a malformed request gets a sentence too; returns how many handlers were wrapped."""
    _guard_conversions(demo)
    count = 0
    for block_fn in demo.fns.values():
        if block_fn.fn is not None and not getattr(block_fn.fn, "_studio_guarded", False):
            block_fn.fn = guarded(block_fn.fn, lambda args, kwargs: check_inputs(sharing, [*args, *kwargs.values()]))
            count += 1
    return count


def guarded(fn: Callable, check: Callable[[tuple, dict], None]) -> Callable:
    """`fn` with `check(args, kwargs)` run first and failures turned into `gr.Error` sentences, of the same kind
    (plain, generator, coroutine, async generator) so gradio calls it as it called `fn`."""
    if inspect.isasyncgenfunction(fn):

        async def wrapper(*args, **kwargs):
            with _sentences():
                check(args, kwargs)
                async for item in fn(*args, **kwargs):
                    yield item

    elif inspect.isgeneratorfunction(fn):

        def wrapper(*args, **kwargs):
            with _sentences():
                check(args, kwargs)
                yield from fn(*args, **kwargs)

    elif inspect.iscoroutinefunction(fn):

        async def wrapper(*args, **kwargs):
            with _sentences():
                check(args, kwargs)
                return await fn(*args, **kwargs)

    else:

        def wrapper(*args, **kwargs):
            with _sentences():
                check(args, kwargs)
                return fn(*args, **kwargs)

    functools.update_wrapper(wrapper, fn)  # gradio reads the handler's parameters (Progress, Request) through this
    wrapper._studio_guarded = True
    return wrapper


class _sentences:  # noqa: N801 - used as `with _sentences():`
    """Turns what a handler raises into a sentence for the visitor: ours as they are, anything else as one plain
    sentence, with its traceback in the server's log."""

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb) -> bool:
        if exc is None or isinstance(exc, gr.Error) or not isinstance(exc, Exception):
            return False  # gradio's own errors, cancellations and exits pass through
        if isinstance(exc, StudioError):
            raise gr.Error(str(exc), print_exception=False) from None
        log.error("a request failed unexpectedly", exc_info=(kind, exc, tb))
        raise gr.Error(UNEXPECTED, print_exception=False) from None


def _guard_conversions(demo: gr.Blocks) -> None:
    """Turns failures of gradio's input and output conversion (a number where a file belongs, a value outside a
    dropdown's choices) into sentences: gradio sends none for errors that are not its own `gr.Error`."""
    preprocess, postprocess = demo.preprocess_data, demo.postprocess_data

    async def preprocess_data(*args, **kwargs):
        try:
            return await preprocess(*args, **kwargs)
        except gr.Error as exc:
            raise gr.Error(_as_sentence(NOT_ACCEPTED, exc.message), print_exception=False) from None
        except Exception as exc:  # noqa: BLE001 - pydantic, PIL, numpy: all mean a malformed input
            log.info("an input was refused: %r", exc)
            raise gr.Error(NOT_ACCEPTED + ".", print_exception=False) from None

    async def postprocess_data(*args, **kwargs):
        try:
            return await postprocess(*args, **kwargs)
        except gr.Error:
            raise
        except Exception:
            log.exception("a result could not be shown")
            raise gr.Error(NOT_SHOWN, print_exception=False) from None

    process_api = demo.process_api

    async def guarded_process_api(*args, **kwargs):
        # The rest of gradio's handling of one request (e.g. an event's data asked for by a handler called through
        # the API without that event): anything unexpected is still one sentence.
        try:
            return await process_api(*args, **kwargs)
        except gr.Error:
            raise
        except Exception:
            log.exception("a request failed unexpectedly")
            raise gr.Error(UNEXPECTED, print_exception=False) from None

    demo.preprocess_data = preprocess_data
    demo.postprocess_data = postprocess_data
    demo.process_api = guarded_process_api


def _as_sentence(lead: str, detail) -> str:
    detail = " ".join(str(detail or "").split())[:300].rstrip(" .")
    return f"{lead}: {detail}." if detail else f"{lead}."


def check_inputs(sharing: SharingPolicy, values: list) -> None:
    """Refuses (in shared mode) over-long texts, photos over the photo limit, and videos or recordings longer than
    their limits among a handler's inputs.

    Raises:
        RefusedError: A limit is exceeded.
    """
    if not sharing.shared:
        return
    for value in values:
        if isinstance(value, str) and not _uploaded(value):
            sharing.check_text(value)
        elif _is_recording(value):
            rate, samples = value
            sharing.check_duration(len(samples) / max(int(rate), 1), "audio")
        for path in _uploaded_files(value):
            _check_file(sharing, path)


def _check_file(sharing: SharingPolicy, path: Path) -> None:
    from studio.media.image import IMAGE_SUFFIXES
    from studio.media.video import VIDEO_SUFFIXES

    suffix = path.suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        sharing.check_photo(path)
    elif suffix in VIDEO_SUFFIXES or suffix in _AUDIO_SUFFIXES:
        from studio.media.audio import probe_duration

        sharing.check_duration(probe_duration(path), "video" if suffix in VIDEO_SUFFIXES else "audio")


_AUDIO_SUFFIXES = (".wav", ".mp3", ".ogg", ".oga", ".opus", ".flac", ".m4a", ".aac", ".webm", ".wma", ".aiff")


def _is_recording(value) -> bool:
    return (
        isinstance(value, tuple)
        and len(value) == 2
        and isinstance(value[0], int)
        and hasattr(value[1], "shape")
        and len(getattr(value[1], "shape", ())) >= 1
    )


def _uploaded(text: str) -> bool:
    return len(text) < 4096 and text.startswith(_upload_folder())


def _upload_folder() -> str:
    return os.path.join(gr.utils.get_upload_folder(), "")


def _uploaded_files(value) -> Iterator[Path]:
    """The files in gradio's upload folder among an input (a path, a file object, a list of them)."""
    items = value if isinstance(value, (list, tuple)) and not _is_recording(value) else [value]
    for item in items:
        path = item if isinstance(item, (str, Path)) else getattr(item, "path", None) or getattr(item, "name", None)
        if isinstance(path, (str, Path)) and _uploaded(str(path)) and os.path.isfile(path):
            yield Path(path)


def limit_queue(demo: gr.Blocks, sharing: SharingPolicy) -> None:
    """Refuses, in words, requests beyond the queue limit of their event or the visitor's own limit (shared mode).

    Call after `demo.queue()`; gradio answers a refused request with HTTP 503 and the sentence (the browser shows it
    as an error toast).
    """
    queue = demo._queue  # noqa: SLF001 - gradio has no per-event queue size: its own push is where one is refused
    push = queue.push
    limits = sharing.limits

    async def limited_push(body, request, username):
        fn_index = getattr(body, "fn_index", None)
        block_fn = demo.fns.get(fn_index) if fn_index is not None else None
        if block_fn is not None and not _ticks(block_fn):
            waiting = queue.event_queue_per_concurrency_id.get(block_fn.concurrency_id)
            if waiting is not None and len(waiting.queue) >= limits.queue_per_event:
                return False, BUSY, "queue_full"
            visitor = username or body.session_hash
            running = [event for job in queue.active_jobs if job for event in job]
            queued = waiting.queue if waiting is not None else []
            mine = [
                e
                for e in (*running, *queued)
                if e.fn is block_fn and ((e.username or e.session_hash) == visitor) and not getattr(e, "closed", False)
            ]
            # A camera or microphone stream is one long event per component; a restarted one must not meet its
            # predecessor's last moments as "already running", so streams are bounded by the queue limit only.
            if len(mine) >= limits.per_visitor and block_fn.connection != "stream":
                return False, ALREADY_RUNNING, "queue_full"
        return await push(body, request, username)

    queue.push = limited_push


def _ticks(block_fn) -> bool:
    """A timer's refresh (milliseconds of work, every few seconds per visitor): never refused, since a refusal would
    show an error every tick while the app is busy."""
    return all(event == "tick" for _, event in block_fn.targets or [("", "")])
