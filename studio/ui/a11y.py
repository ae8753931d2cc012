"""Accessibility pieces every tab shares: page-wide keyboard behaviour, repairs of gradio's inaccessible markup,
stopping every voice at once, and toasts that are said once per session and tab.

The repairs are small DOM fixes applied by one MutationObserver, so a tab added later gets them without doing
anything. Each one works around a gradio 6 defect worth reporting upstream (see the note of issue 13):

- `<div aria-label="Empty value">` (an empty output's icon) has no role, and aria-label is prohibited on a plain
  div (axe: aria-prohibited-attr): given role="img", which is what it is.
- Upload buttons named by the untranslated i18n key `common.upload`: named "Upload a file".
- Tab lists: every tab is a Tab stop and arrow keys do nothing; here they follow the WAI-ARIA tabs pattern (only the
  selected tab is a Tab stop, arrows/Home/End move between tabs and select).
- A picture output is a button holding an <img> without alt text (axe: button-name): named after the component's
  label.
- A toast's header is a role=button with the close button inside it (axe: nested-interactive): the header is made
  plain text, the close button stays.
- Gallery thumbnails are named "Thumbnail 1 of 3" and repeat their caption as alt text (axe: image-redundant-alt), and
  each is a Tab stop: named by the caption, alt="", and one Tab stop per gallery with arrow keys within it.
- The server voice's <audio> lives inside the audio player's shadow DOM, where `document.querySelectorAll("audio")`
  does not look: `studioStopVoices()` walks shadow roots too.
"""

from __future__ import annotations

import threading

import gradio as gr

# Loaded in <head> (studio/ui/app.py adds it to the page head).
HEAD_JS = """
<script>
(() => {
  // Every <audio>/<video> on the page, inside shadow roots too.
  const allMedia = (root = document) => {
    const found = [...root.querySelectorAll("audio, video")];
    for (const el of root.querySelectorAll("*")) if (el.shadowRoot) found.push(...allMedia(el.shadowRoot));
    return found;
  };
  // Stops every voice at once: the browser's speech and every playing sound (the server voice), not the camera.
  window.studioStopVoices = () => {
    if (window.speechSynthesis) window.speechSynthesis.cancel();
    for (const media of allMedia()) {
      if (media.srcObject) continue;  // a live camera or microphone preview, not a voice
      media.pause();
    }
  };
  // The element holding a gallery's thumbnails (each sits in its own .gallery-item).
  const thumbRow = (thumb) => (thumb.closest(".gallery-item") || thumb).parentElement;
  const repair = () => {
    const all = (selector) => document.querySelectorAll(selector);
    for (const el of all('[aria-label="Empty value"]:not([role])')) el.setAttribute("role", "img");
    for (const el of all('[aria-label="common.upload"]')) el.setAttribute("aria-label", "Upload a file");
    for (const el of document.querySelectorAll('[title="common.upload"]')) el.setAttribute("title", "Upload a file");
    // A picture shown as a button (gradio's image outputs) with no alt text: named after its component's label.
    for (const button of all("button:not([aria-label])")) {
      const img = button.querySelector("img");
      if (!img || img.alt || button.textContent.trim()) continue;
      const label = button.closest(".block")?.querySelector('[data-testid="block-label"]')?.textContent.trim();
      button.setAttribute("aria-label", label || "Picture");
    }
    // A toast's header is a role=button holding the close button (nested-interactive): the close button stays.
    for (const el of all('.toast-header[role="button"]')) {
      el.removeAttribute("role");
      el.removeAttribute("tabindex");
    }
    for (const list of document.querySelectorAll('[role="tablist"]')) {
      const tabs = [...list.querySelectorAll(':scope > [role="tab"], :scope > * > [role="tab"]')];
      if (!tabs.length) continue;
      const selected = tabs.find((t) => t.getAttribute("aria-selected") === "true") || tabs[0];
      for (const tab of tabs) {
        const want = tab === selected ? "0" : "-1";
        if (tab.getAttribute("tabindex") !== want) tab.setAttribute("tabindex", want);
      }
    }
    for (const img of all(".gallery-item img, .thumbnail-item img, [data-testid='gallery'] img")) {
      const caption = img.closest("button, .gallery-item, .thumbnail-item")?.textContent.trim();
      if (img.alt && caption && caption.includes(img.alt.trim())) img.alt = "";
    }
    // Gallery thumbnails: named by their picture's caption (gradio names them "Thumbnail 1 of 3" and repeats the
    // caption as alt), and one Tab stop for the whole row (arrow keys move within it).
    const rows = new Set([...all("button.thumbnail-item")].map(thumbRow));
    for (const row of rows) {
      const thumbs = [...row.querySelectorAll("button.thumbnail-item")];
      const current = thumbs.find((t) => t.classList.contains("selected")) || thumbs[0];
      thumbs.forEach((thumb, i) => {
        const img = thumb.querySelector("img");
        const label = thumb.closest(".gallery-item")?.textContent.trim();
        const caption = img && (img.dataset.caption || img.alt || label);
        if (caption) {  // set only what differs: the observer sees every attribute write
          if (img.dataset.caption !== caption) img.dataset.caption = caption;
          if (img.alt) img.alt = "";
          const name = `${caption} (${i + 1} of ${thumbs.length})`;
          if (thumb.getAttribute("aria-label") !== name) thumb.setAttribute("aria-label", name);
        }
        const want = thumb === current ? "0" : "-1";
        if (thumb.getAttribute("tabindex") !== want) thumb.setAttribute("tabindex", want);
      });
    }
  };
  let pending = false;
  const schedule = () => {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => { pending = false; repair(); });
  };
  const start = () => {
    repair();
    new MutationObserver(schedule).observe(document.body, {
      subtree: true, childList: true, attributes: true, attributeFilter: ["aria-selected", "alt", "aria-label"],
    });
  };
  if (document.body) start(); else document.addEventListener("DOMContentLoaded", start);
  // Arrow keys, Home and End move between tabs and select them (WAI-ARIA tabs pattern).
  document.addEventListener("keydown", (event) => {
    const thumb = event.target.closest && event.target.closest("button.thumbnail-item");
    if (thumb && /^Arrow(Left|Right|Up|Down)$/.test(event.key)) {
      const thumbs = [...thumbRow(thumb).querySelectorAll("button.thumbnail-item")];
      const step = /Right|Down/.test(event.key) ? 1 : -1;
      const target = thumbs[(thumbs.indexOf(thumb) + step + thumbs.length) % thumbs.length];
      event.preventDefault();
      thumb.setAttribute("tabindex", "-1");
      target.setAttribute("tabindex", "0");
      target.focus();
      return;
    }
    const tab = event.target.closest && event.target.closest('[role="tab"]');
    if (!tab || event.altKey || event.ctrlKey || event.metaKey) return;
    const list = tab.closest('[role="tablist"]');
    const tabs = [...list.querySelectorAll('[role="tab"]')].filter((t) => t.offsetParent !== null && !t.disabled);
    const i = tabs.indexOf(tab);
    const last = tabs.length - 1;
    const moves = { ArrowRight: i + 1, ArrowDown: i + 1, ArrowLeft: i - 1, ArrowUp: i - 1, Home: 0, End: last };
    const next = moves[event.key];
    if (next === undefined || i < 0) return;
    event.preventDefault();
    const target = tabs[(next + tabs.length) % tabs.length];
    target.click();
    target.focus();
  });
})();
</script>
"""


def current_session() -> str:
    """The browser session of the event being handled ("local" outside an event)."""
    from gradio.context import LocalContext

    request = LocalContext.request.get(None)
    return getattr(request, "session_hash", None) or "local"


class Toasts:
    """Toasts said once per browser session and tab: a notice that repeats on every action ("This model has no ONNX
    export yet…") or on every camera frame is shown the first time only, titled with its tab so that toasts of two
    tabs are never read as one.

    A problem with the user's input is not a toast: it is said in the tab's live region only (`problem`), so a
    screen reader hears it once.
    """

    def __init__(self, tab: str) -> None:
        self.tab = tab
        self._shown: dict[str, set[str]] = {}
        self._lock = threading.Lock()

    def __call__(self, session: str | None, message: str, level: str = "info") -> bool:
        """Shows `message` unless this session (None: the current event's) already saw it on this tab; returns
        whether it was shown."""
        session = session or current_session()
        with self._lock:
            shown = self._shown.setdefault(session, set())
            if message in shown:
                return False
            if len(self._shown) > _MAX_SESSIONS:
                self._shown.pop(next(iter(self._shown)))
            shown.add(message)
        (gr.Warning if level == "warning" else gr.Info)(message, duration=10, title=self.tab)
        return True

    def clear(self, session: str) -> None:
        """Forgets what this session saw (a stream stopped: its next start may say it again)."""
        with self._lock:
            self._shown.pop(session, None)


_MAX_SESSIONS = 1000  # sessions remembered per tab; the oldest is forgotten first
_TOASTS: dict[str, Toasts] = {}


def notify(tab: str, message: str, level: str = "info") -> bool:
    """Shows a notice as a toast once per session on `tab` (see `Toasts`); returns whether it was shown."""
    if tab not in _TOASTS:
        _TOASTS[tab] = Toasts(tab)
    return _TOASTS[tab](None, message, level)
