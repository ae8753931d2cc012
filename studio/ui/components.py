"""Small UI pieces shared by tabs: a lenient image input, status lines, warnings that do not flood."""

from __future__ import annotations

import html
import logging
from pathlib import Path

import gradio as gr

from studio.progress import Progress
from studio.ui.a11y import Toasts

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


def problem(message, region_id: str, warn=None) -> str:
    """Says a problem once, in the tab's live region, styled as a problem (no toast: a screen reader would say it
    twice, since gradio's toasts are live regions too). An error's `details` (folder paths...) follow behind a
    "Details" disclosure outside the live region, so they are there to read but not announced.

    Args:
        message: The sentence, or the `StudioError` whose sentence it is.
        region_id: The tab's live region.
        warn: Ignored (problems were also toasted through it once); kept so existing callers need no change.
    """
    details = getattr(message, "details", "")
    region = live_region(str(message), region_id, problem=True)
    if details:
        region += f'<details class="studio-details"><summary>Details</summary>{html.escape(details)}</details>'
    return region


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


class WarnOnce(Toasts):
    """Shows each distinct warning once per session (and tab), so a live stream does not raise a toast per frame."""

    def __init__(self, tab: str = "Studio") -> None:
        super().__init__(tab)

    def __call__(self, session: str, message: str, level: str = "warning") -> bool:
        return super().__call__(session, message, level)


def service_of(ctx, service_class):
    """The service a tab calls: the app's one instance (in this process or on Ray Serve: `AppContext.service`), or
    a new in-process one for a bare `LoadedModels` (a tab built on its own, as tests do)."""
    service = getattr(ctx, "service", None)
    return service(service_class) if callable(service) else service_class(ctx)
