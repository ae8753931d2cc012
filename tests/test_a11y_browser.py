"""WCAG 2.2 AA on every tab, in Debian chromium: axe-core at rest and with a result showing (also in high contrast),
each tab's main action reached from its input with at most 5 Tab presses and run with Enter, arrow keys on the tab
lists, Alt+Shift+S silencing the server voice, problems said once, notices toasted once, and the defaults that once
failed (the Video tab's empty boxes, the Fine-tune picker after a reload).

Every test iterates over `studio.ui.app.TABS`, so a tab added later is audited without changing this file (its
main action is found by `tests.a11y.generic_action` unless it has an entry in `tests.a11y.main_actions`).
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from studio.ui.app import TABS
from tests.a11y import (
    MAX_TAB_PRESSES,
    PANEL,
    focused,
    generic_action,
    main_actions,
    open_tab,
    serious_violations,
    tab_presses,
)
from tests.helpers import REPO, WAIT_MS, launch_chromium, launched_app, open_page, screenshot_on_failure
from tests.inputs import drawn_frames, speak_wav, text_picture, write_clip

pytestmark = pytest.mark.browser

ARTIFACT_PREFIX = "browser-a11y"  # screenshots: test-artifacts/browser-a11y-*.png (the `artifacts` fixture)
TITLES = [title for title, _ in TABS]
PHOTO = REPO / "assets" / "images" / "chelsea.jpg"


@pytest.fixture(scope="module")
def a11y_inputs(tmp_path_factory) -> dict:
    """A photo, a spoken sentence, a short clip and a picture of text."""
    from PIL import Image

    d = tmp_path_factory.mktemp("a11y-inputs")
    Image.fromarray(text_picture(["OPEN 9 TO 5", "Coffee and tea"])).save(d / "sign.png")
    return {
        "image": PHOTO,
        "audio": speak_wav(d / "speech.wav", "the dog is barking at the door"),
        "video": write_clip(d / "clip.mp4", drawn_frames(30), fps=10),
        "text_image": d / "sign.png",
    }


@pytest.fixture(scope="module")
def a11y_app(tmp_path_factory, tiny_clip_dir, tiny_blip_dir, tiny_vilt_dir, tiny_whisper_dir, tiny_ast_dir,
             tiny_videomae_dir):  # fmt: skip
    """The app with every tab's tiny model preselected and nothing exported (PyTorch runs them, and says so once),
    and one Fine-tune classifier with examples, made before the app started."""
    from studio.classifiers.store import ClassifierStore
    from tests.fixtures.finetune import write_shape_folder

    empty = tmp_path_factory.mktemp("a11y-exports")
    store = ClassifierStore(empty)
    store.create("Colours", ["red", "green", "blue"], str(tiny_clip_dir))
    store.add_folder("Colours", write_shape_folder(tmp_path_factory.mktemp("a11y-shapes"), 3))
    models = {
        "zero-shot": tiny_clip_dir,
        "caption": tiny_blip_dir,
        "vqa": tiny_vilt_dir,
        "speech-to-text": tiny_whisper_dir,
        "av-events": tiny_ast_dir,
        "video": tiny_videomae_dir,
    }
    yield from launched_app(tmp_path_factory, "a11y-models", empty, models)


@pytest.fixture(scope="module")
def page(a11y_app, pw, chromium):
    """One page for the module's tests (autoplay allowed, so the server voice plays as in a user's browser)."""
    browser = launch_chromium(pw, chromium)
    p = open_page(browser, a11y_app[0])
    expect(p.locator("#studio-tabs")).to_be_visible()
    yield p
    browser.close()


def _assert_no_serious(page: Page, where: str) -> None:
    found = serious_violations(page)
    assert not found, f"{where}: " + "\n".join(f"{v['id']} ({v['impact']}): {v['help']} {v['nodes']}" for v in found)


# At rest and with a result -------------------------------------------------------------------------------------


@pytest.mark.parametrize("contrast", ["standard", "high contrast"])
def test_every_tab_at_rest_has_no_serious_axe_violations(page, artifacts, contrast):
    switch = page.get_by_label("High contrast (white on black, for projectors)")
    switch.set_checked(contrast == "high contrast")
    expect(page.locator("html")).to_have_class(
        re.compile("studio-high-contrast") if switch.is_checked() else re.compile("^(?!.*studio-high-contrast)")
    )
    try:
        for title in TITLES:
            open_tab(page, title)
            with screenshot_on_failure(page, artifacts / f"browser-a11y-rest-{contrast.replace(' ', '-')}-FAILED.png"):
                _assert_no_serious(page, f"{title} at rest ({contrast})")
        if contrast == "high contrast":
            page.screenshot(path=str(artifacts / "browser-a11y-high-contrast.png"))
    finally:
        switch.set_checked(False)


@pytest.mark.parametrize("title", TITLES)
def test_main_action_by_keyboard_then_no_serious_axe_violations(a11y_app, browser, a11y_inputs, artifacts, title):
    """From the tab's input, at most 5 Tab presses reach its main action; Enter runs it; the result is said in the
    live region (not a problem), and the page with the result showing has no serious violations."""
    page = open_page(browser, a11y_app[0])
    open_tab(page, title)
    action = main_actions(a11y_inputs).get(title) or generic_action(page, a11y_inputs)
    slug = re.sub(r"[^a-z]+", "-", title.lower())
    with screenshot_on_failure(page, artifacts / f"browser-a11y-{slug}-FAILED.png"):
        if action.prepare:
            action.prepare(page)
        for selector, path in action.files.items():
            page.locator(selector).set_input_files(str(path))
        for selector, text in action.fill.items():
            page.locator(selector).fill(text)
        page.wait_for_timeout(300)  # the upload's own event (some tabs run on upload) has started
        page.wait_for_function("() => !document.querySelector('.eta-bar, .progress-text')", timeout=WAIT_MS * 4)

        presses = tab_presses(page, action.start, action.button)
        assert presses is not None and presses <= MAX_TAB_PRESSES, (
            f"{title}: {presses} Tab presses from {action.start} to {action.button}; stopped at {focused(page)}"
        )
        with page.expect_request(lambda r: "queue/join" in r.url and r.method == "POST"):
            page.keyboard.press("Enter")
        region = page.locator(action.region)
        expect(region).not_to_have_text("", timeout=WAIT_MS * 4)
        page.wait_for_function("() => !document.querySelector('.eta-bar, .progress-text')", timeout=WAIT_MS * 4)
        expect(region).not_to_have_class(re.compile("studio-problem"))
        page.screenshot(path=str(artifacts / f"browser-a11y-{slug}-result.png"), full_page=True)
        _assert_no_serious(page, f"{title} with a result")
    page.context.close()


# Keyboard --------------------------------------------------------------------------------------------------------


def test_arrow_keys_move_between_tabs_and_only_the_selected_tab_is_a_tab_stop(page):
    open_tab(page, TITLES[0])
    tabs = page.locator("#studio-tabs [role=tablist]").first.locator("[role=tab]").filter(visible=True)
    first = tabs.first
    first.focus()
    page.keyboard.press("ArrowRight")
    expect(tabs.nth(1)).to_be_focused()
    expect(tabs.nth(1)).to_have_attribute("aria-selected", "true")
    expect(first).to_have_attribute("tabindex", "-1")
    page.keyboard.press("End")
    expect(tabs.last).to_have_attribute("aria-selected", "true")
    page.keyboard.press("Home")
    expect(first).to_have_attribute("aria-selected", "true")
    # Tab leaves the tab list for the tab's content instead of visiting every other tab.
    page.keyboard.press("Tab")
    top_list = "document.querySelector('#studio-tabs [role=tablist]')"
    assert page.evaluate(f"() => document.activeElement.closest('[role=tablist]') !== {top_list}"), focused(page)


_PLAYING_JS = """() => {
    const found = [];
    const walk = root => {
        for (const el of root.querySelectorAll('*')) {
            if (el.tagName === 'AUDIO' && el.src) found.push({paused: el.paused, time: el.currentTime});
            if (el.shadowRoot) walk(el.shadowRoot);
        }
    };
    walk(document);
    return found;
}"""


def test_alt_shift_s_silences_the_server_voice(a11y_app, pw, chromium, artifacts, a11y_inputs):
    """A slowly spoken description plays in the server voice's player (inside its shadow DOM); Alt+Shift+S stops
    it at once and it stays silent."""
    from tests.helpers import CHROMIUM_ARGS

    browser = pw.chromium.launch(
        executable_path=chromium, args=[*CHROMIUM_ARGS, "--autoplay-policy=no-user-gesture-required"]
    )
    page = open_page(browser, a11y_app[0])
    with screenshot_on_failure(page, artifacts / "browser-a11y-stop-voice-FAILED.png"):
        open_tab(page, "Caption")
        page.locator("#cap-photo input[type=file]").set_input_files(str(a11y_inputs["image"]))
        page.locator(PANEL).first.get_by_role("button", name=re.compile(r"^Speech\s*[▼▲]?$")).click()
        page.get_by_role("radio", name="The server's voice (espeak-ng)", exact=True).check()
        rate = page.get_by_role("spinbutton", name="Speaking rate (words per minute)")
        rate.fill(rate.get_attribute("min"))
        rate.press("Enter")
        page.locator("#cap-describe-photo").click()
        page.wait_for_function(f"() => ({_PLAYING_JS})().some(a => !a.paused && a.time > 0.2)", timeout=WAIT_MS * 2)
        page.keyboard.press("Alt+Shift+S")
        page.wait_for_function(f"() => ({_PLAYING_JS})().every(a => a.paused)", timeout=2000)
        before = page.evaluate(_PLAYING_JS)
        page.wait_for_timeout(600)
        after = page.evaluate(_PLAYING_JS)
        assert [a["time"] for a in after] == [a["time"] for a in before], (before, after)  # still silent
    browser.close()


# Said once ---------------------------------------------------------------------------------------------------------


def test_a_notice_is_toasted_once_and_a_problem_is_not_toasted(a11y_app, pw, chromium, artifacts):
    """ "This model has no ONNX export yet…" comes once per session and tab, however often one classifies; a problem
    is said in the live region only (gradio's toasts are live regions too, so a toast would say it twice)."""
    browser = launch_chromium(pw, chromium)
    page = open_page(browser, a11y_app[0])
    page.evaluate(
        """() => { window.__toasts = [];
            new MutationObserver(() => {
                for (const t of document.querySelectorAll('[data-testid="toast-body"], .toast-body')) {
                    if (!t.dataset.seen) { t.dataset.seen = '1'; window.__toasts.push(t.textContent.trim()); }
                }
            }).observe(document.body, {subtree: true, childList: true}); }"""
    )
    with screenshot_on_failure(page, artifacts / "browser-a11y-toasts-FAILED.png"):
        open_tab(page, "Zero-shot")
        page.locator("#zs-classify").click()  # no photo yet: a problem
        expect(page.locator("#zs-announce")).to_contain_text("no photo")
        page.locator("#zs-photo input[type=file]").set_input_files(str(PHOTO))
        expect(page.locator("#zs-announce")).to_contain_text("Best match:")
        for _ in range(2):
            with page.expect_response(lambda r: "queue/data" in r.url or "queue/join" in r.url):
                page.locator("#zs-classify").click()
            page.wait_for_timeout(500)
            expect(page.locator("#zs-announce")).to_contain_text("Best match:")
        page.wait_for_timeout(500)
        toasts = page.evaluate("() => window.__toasts")
    browser.close()
    assert not [t for t in toasts if "no photo" in t], toasts
    assert len([t for t in toasts if "no ONNX export yet" in t]) == 1, toasts


# Defaults --------------------------------------------------------------------------------------------------------


def test_video_classifies_with_the_boxes_as_they_open(page, a11y_inputs):
    """The window and step boxes open empty or 0 (the model's own); Classify with them works, with no error badge."""
    page.reload()
    open_tab(page, "Video")
    for label in ("Seconds per window", "Seconds between windows"):
        value = page.get_by_label(re.compile(f"^{label}")).input_value()
        assert value in ("", "0"), (label, value)
    page.locator("#vid-video input[type=file]").set_input_files(str(a11y_inputs["video"]))
    page.locator("#vid-classify").click()
    expect(page.locator("#vid-announce")).to_contain_text("Most likely action:", timeout=WAIT_MS * 2)
    expect(page.locator(PANEL).first.locator(".error")).to_have_count(0)


def test_fine_tune_picker_keeps_its_classifier_after_a_reload(tmp_path_factory, tiny_clip_dir, pw, chromium, artifacts):
    """On an app started with no classifier, one made meanwhile is chosen on a reloaded page, and Train does not
    ask for one."""
    from gradio_client import Client

    app = launched_app(
        tmp_path_factory, "a11y-reload", tmp_path_factory.mktemp("a11y-none"), {"zero-shot": tiny_clip_dir}
    )
    url, _ = next(app)
    browser = launch_chromium(pw, chromium)
    try:
        page = open_page(browser, url)
        open_tab(page, "Fine-tune")
        client = Client(url, verbose=False)
        client.predict("Mugs", "mine, other", str(tiny_clip_dir), api_name="/finetune_create")
        page.reload()
        with screenshot_on_failure(page, artifacts / "browser-a11y-reload-FAILED.png"):
            open_tab(page, "Fine-tune")
            expect(page.locator("#ft-classifier input")).to_have_value("Mugs")
            page.locator("#ft-train").click()
            expect(page.locator("#ft-announce")).to_contain_text("no examples yet", timeout=WAIT_MS * 2)
            expect(page.locator("#ft-announce")).not_to_contain_text("Create or choose")
    finally:
        browser.close()
        next(app, None)
