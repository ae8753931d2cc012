"""Accessibility checks every tab shares (tests/test_a11y_browser.py runs them over `studio.ui.app.TABS`):

- `serious_violations(page)`: axe-core's WCAG 2.2 A/AA (and best-practice) violations of impact serious or critical.
- `open_tab(page, title)`: the top-level tab, by its id (`studio.ui.app.tab_id`).
- `tab_presses(page, start, target)`: how many Tab presses take the focus from `start` to `target`.
- `MainAction` / `MAIN_ACTIONS`: each tab's input and main action; a tab without an entry gets `generic_action`
  (its first file input, its first primary button, its first live region), so a new tab is checked too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from playwright.sync_api import Page

AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"]
SERIOUS = ("serious", "critical")
MAX_TAB_PRESSES = 5

# The visible top-level tab panel (the other tabs' panels are hidden).
PANEL = "#studio-tabs > [role=tabpanel]:visible, #studio-tabs > div > [role=tabpanel]:visible"


def serious_violations(page: Page) -> list[dict]:
    """axe-core's serious and critical violations on the page as it is now: [{"id", "impact", "help", "nodes"}]."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page, options={"runOnly": {"type": "tag", "values": AXE_TAGS}})
    return [
        {
            "id": v["id"],
            "impact": v["impact"],
            "help": v["help"],
            "nodes": [(n["target"], n["html"][:160], _why(n)) for n in v["nodes"][:5]],
        }
        for v in results.response["violations"]
        if v["impact"] in SERIOUS
    ]


def _why(node: dict) -> str:
    checks = node.get("any") or node.get("all") or node.get("none") or [{}]
    return (checks[0].get("message") or "")[:200]


def open_tab(page: Page, title: str) -> None:
    """Selects the top-level tab with this title."""
    from studio.ui.app import tab_id

    page.locator(f"button[data-tab-id='{tab_id(title)}']").click()
    page.wait_for_function(
        "id => document.querySelector(`button[data-tab-id='${id}']`)?.getAttribute('aria-selected') === 'true'",
        arg=tab_id(title),
    )


_FOCUS_IN = """([selector, target]) => {
    const a = document.activeElement;
    return !!a && !!a.closest(selector) && (target || a !== document.body);
}"""


def focus_first_in(page: Page, selector: str) -> None:
    """Focuses the first keyboard-reachable control inside the visible element `selector` (or the element itself)."""
    page.locator(selector).filter(visible=True).first.evaluate(
        """el => {
            const sel = 'button:not([disabled]), input:not([type=hidden]):not([disabled]), textarea, select, '
                + '[tabindex]:not([tabindex="-1"])';
            const target = el.matches(sel) ? el : [...el.querySelectorAll(sel)].find(e => e.offsetParent !== null
                && e.tabIndex >= 0 && e.type !== 'file');
            (target || el).focus();
        }"""
    )


def tab_presses(page: Page, start: str, target: str, most: int = 12) -> int | None:
    """How many Tab presses move the focus from the first control in `start` to `target` (None: not within `most`)."""
    focus_first_in(page, start)
    for n in range(1, most + 1):
        page.keyboard.press("Tab")
        if page.evaluate(_FOCUS_IN, [target, True]):
            return n
    return None


def focused(page: Page) -> str:
    """The focused element, in words, for failure messages."""
    return page.evaluate(
        """() => { const e = document.activeElement;
            if (!e) return 'nothing';
            const name = (e.getAttribute('aria-label') || e.textContent || '').trim().slice(0, 60);
            return `${e.tagName}#${e.id} ${name}`; }"""
    )


@dataclass
class MainAction:
    """A tab's input and main action, as a keyboard user meets them.

    Attributes:
        start: The input the user starts from (a selector; the first control inside it gets the focus).
        button: The main action's button.
        region: The tab's live region, where the result (or a problem) is said.
        files: {file input selector: file} set before starting (as a user's file chooser would).
        fill: {text box selector: text} typed before starting.
        prepare: Anything else to do first (open a sub-tab...).
    """

    start: str
    button: str
    region: str
    files: dict[str, Path] = field(default_factory=dict)
    fill: dict[str, str] = field(default_factory=dict)
    prepare: Callable[[Page], None] | None = None


def generic_action(page: Page, inputs: dict[str, Path]) -> MainAction:
    """The main action of a tab without an entry in MAIN_ACTIONS: its first visible file input (given the file in
    `inputs` whose kind, image/audio/video, the input accepts), first primary button and first live region."""
    panel = page.locator(PANEL).first
    ids = panel.evaluate(
        """p => {
            const visible = e => e.offsetParent !== null;
            const file = [...p.querySelectorAll('input[type=file]')].find(e => visible(e.closest('[id]')));
            const button = [...p.querySelectorAll('button.primary')].find(visible);
            const region = p.querySelector('[role=status][id]');
            return {
                file: file ? file.closest('[id]').id : null, accept: file ? file.accept : '',
                button: button ? button.id : null, region: region ? region.id : null,
            };
        }"""
    )
    assert ids["button"] and ids["region"], f"a tab needs a primary button and a live region, both with ids: {ids}"
    kind = next((k for k in ("image", "audio", "video") if k in ids["accept"]), "image")
    files = {f"#{ids['file']} input[type=file]": inputs[kind]} if ids["file"] else {}
    return MainAction(
        start=f"#{ids['file']}" if ids["file"] else f"#{ids['button']}",
        button=f"#{ids['button']}",
        region=f"#{ids['region']}",
        files=files,
    )


def open_sub_tab(name: str) -> Callable[[Page], None]:
    """A `prepare` step: selects the visible sub-tab with this name."""

    def prepare(page: Page) -> None:
        page.locator(PANEL).first.get_by_role("tab", name=name, exact=True).click()

    return prepare


def main_actions(inputs: dict[str, Path]) -> dict[str, MainAction]:
    """Each tab's input and main action; `inputs` holds an "image", "audio", "video" and "text_image" file."""
    return {
        "Zero-shot": MainAction(
            "#zs-photo", "#zs-classify", "#zs-announce", {"#zs-photo input[type=file]": inputs["image"]}
        ),
        "Caption": MainAction(
            "#cap-photo", "#cap-describe-photo", "#cap-announce", {"#cap-photo input[type=file]": inputs["image"]}
        ),
        "Ask": MainAction(
            "#ask-question",
            "#ask-submit",
            "#ask-announce",
            {"#ask-image input[type=file]": inputs["image"]},
            fill={"#ask-question textarea": "what is in the picture?"},
        ),
        "Sound & scene": MainAction(
            "#snd-audio", "#snd-recognise", "#snd-announce", {"#snd-audio input[type=file]": inputs["audio"]}
        ),
        "Video": MainAction(
            "#vid-video", "#vid-classify", "#vid-announce", {"#vid-video input[type=file]": inputs["video"]}
        ),
        # The examples are there already (the test's classifier); adding more is the step before training.
        "Fine-tune": MainAction("#ft-add-uploads", "#ft-train", "#ft-announce", prepare=open_sub_tab("Upload")),
        "Read text": MainAction(
            "#rt-photo", "#rt-read-photo", "#rt-announce", {"#rt-photo input[type=file]": inputs["text_image"]}
        ),
    }
