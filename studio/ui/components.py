"""Small UI pieces shared by tabs: a lenient image input, status lines, warnings that do not flood."""

from __future__ import annotations

import html
import logging
from pathlib import Path

import gradio as gr

from studio.progress import Progress

log = logging.getLogger(__name__)


EXAMPLE_NAMES = {"astronaut": "Astronaut portrait", "chelsea": "Cat (Chelsea)", "coffee": "Cup of coffee"}


def example_photos(component) -> gr.Examples:
    """The example photos in assets/images as examples for an image input, named in words.

    Text names, not thumbnails: the thumbnails gradio draws have no alt text for screen readers.
    """
    from studio.paths import assets_dir

    photos = sorted((assets_dir() / "images").glob("*.jpg"))
    return gr.Examples(
        examples=[[str(p)] for p in photos],
        inputs=[component],
        example_labels=[EXAMPLE_NAMES.get(p.stem, p.stem) for p in photos],
        label="Example photos",
    )


class LenientImage(gr.Image):
    """gr.Image whose upload handling never fails before our own loader can explain what is wrong with a file.

    gr.Image opens uploads with PIL before the event handler runs, so an empty or damaged file ends in a generic
    error. This subclass hands such a file's path on, and `studio.media.image.load_image` says what is wrong in words.
    """

    def get_block_name(self) -> str:
        return "image"

    def preprocess(self, payload):
        try:
            return super().preprocess(payload)
        except Exception:  # noqa: BLE001 - any decoding failure is reported by load_image
            path = getattr(payload, "path", None)
            if path is None:
                raise
            log.info("gradio could not open %s; passing it on for a clear message", Path(path).name)
            return str(path)


def session_of(request: gr.Request | None) -> str:
    """The browser session a request comes from (streams and warnings are kept per session)."""
    return getattr(request, "session_hash", None) or "local"


def problem(message: str, region_id: str, warn=gr.Warning) -> str:
    """Says a problem twice: as a warning toast (or `warn`) and in the tab's live region, styled as a problem."""
    warn(message)
    return live_region(message, region_id, problem=True)


def runtime_badge(runtime: dict | None) -> str:
    """Markdown for the runtime badge: what the model really runs on (a result's "runtime")."""
    if runtime is None:
        return "**Runs on:** not loaded yet (the model loads on first use)"
    return f"**Runs on:** {runtime['label']}"


def live_region(text: str, element_id: str, problem: bool = False) -> str:
    """HTML for a polite ARIA live region: screen readers announce it when its text changes.

    Args:
        text: What to show and announce.
        element_id: The region's id (one per tab, so its announcements do not mix with another tab's).
        problem: Styles the text as a problem to fix rather than a result.
    """
    css = ' class="studio-problem"' if problem else ""
    return f'<div id="{element_id}" role="status" aria-live="polite" aria-atomic="true"{css}>{html.escape(text)}</div>'


def ui_progress(progress: gr.Progress) -> Progress:
    """Adapts gr.Progress to `studio.progress.Progress`."""
    return lambda fraction, message: progress(min(max(fraction, 0.0), 1.0), desc=message)


class WarnOnce:
    """Shows each distinct warning once per session, so a live stream does not raise a toast per frame."""

    def __init__(self) -> None:
        self._shown: dict[str, set[str]] = {}

    def __call__(self, session: str, message: str) -> None:
        shown = self._shown.setdefault(session, set())
        if message not in shown:
            shown.add(message)
            gr.Warning(message)

    def clear(self, session: str) -> None:
        self._shown.pop(session, None)


def service_of(ctx, service_class):
    """The service a tab calls: the app's one instance (in this process or on Ray Serve: `AppContext.service`), or
    a new in-process one for a bare `LoadedModels` (a tab built on its own, as tests do)."""
    service = getattr(ctx, "service", None)
    return service(service_class) if callable(service) else service_class(ctx)
