"""The Read text tab end to end in Debian chromium with playwright, with the default settings and the real PP-OCR:
a photo read with the keyboard (shown, boxed, announced), rated with the "3" key into the trial log; the live camera
(a video of two signs, looping) says each sign once and never again while it stays known."""

from __future__ import annotations

import json
import re
import time

import pytest
from PIL import Image
from playwright.sync_api import Browser, Page, expect

from tests.helpers import free_port, launch_chromium, open_page, screenshot_on_failure, toggle_accordion
from tests.inputs import write_y4m

pytestmark = pytest.mark.browser

ARTIFACT_PREFIX = "browser-read-text"  # screenshots: test-artifacts/browser-read-text-*.png

# Records every change of the announced text as {text, problem}, read 100 ms after the DOM settles.
_WATCH_JS = """() => {
    window.__rtLog = [];
    let pending = null;
    const snapshot = () => {
        pending = null;
        const region = document.getElementById('rt-announce');
        const entry = {text: region ? region.textContent.trim() : null,
                       problem: region ? region.classList.contains('studio-problem') : false};
        const last = window.__rtLog[window.__rtLog.length - 1];
        if (!last || last.text !== entry.text) window.__rtLog.push(entry);
    };
    new MutationObserver(() => { if (!pending) pending = setTimeout(snapshot, 100); })
        .observe(document.getElementById('rt-announce').parentElement,
                 {subtree: true, childList: true, characterData: true, attributes: true});
    snapshot();
}"""


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    """The app with the trial log on (`studio --trial-log DIR --participant P11`): (URL, trial folder)."""
    from studio.ui.app import launch

    root = tmp_path_factory.mktemp("read-text-browser")
    (root / "exported").mkdir()
    port = free_port()
    demo = launch(
        port=port, models_dir=root / "exported", open_browser=False, block=False, trial_log=root / "trial",
        participant="P11",
    )  # fmt: skip
    try:
        yield f"http://127.0.0.1:{port}/", root / "trial"
    finally:
        demo.close()


def new_page(browser: Browser, url: str) -> Page:
    page = open_page(browser, url)
    page.get_by_role("tab", name="Read text", exact=True).click()
    expect(page.locator("#rt-read-photo")).to_be_visible()
    return page


def test_read_a_photo_with_the_keyboard_and_rate_it(app, browser, artifacts, text_pages, tmp_path):
    url, trial = app
    picture = tmp_path / "sign.png"
    Image.fromarray(text_pages["sign-sans-48"][0]).save(picture)
    page = new_page(browser, url)
    with screenshot_on_failure(page, artifacts / "browser-read-text-photo-FAILED.png"):
        page.locator("#rt-photo input[type=file]").set_input_files(str(picture))
        expect(page.locator("#rt-photo img").first).to_be_visible()
        page.keyboard.press("Alt+Shift+R")

        announce = page.locator("#rt-announce")
        expect(announce).to_have_text("EMERGENCY EXIT. Keep this door closed.", timeout=60_000)
        expect(announce).to_have_attribute("aria-live", "polite")
        expect(page.locator("#rt-text textarea")).to_have_value("EMERGENCY EXIT\nKeep this door closed")
        expect(page.locator("#rt-boxed img")).to_be_visible()
        expect(page.locator("#rt-lines ol li").first).to_have_text(re.compile(r"^EMERGENCY \(\d+% sure\)$"))
        expect(page.locator("#rt-runtime")).to_contain_text("Runs on: ONNX Runtime")

        # The trial log is on: the rating buttons are shown, and "3" (not typing in a box) rates the reading.
        expect(page.locator("#trial-rate-3")).to_be_visible()
        page.locator("#rt-read-photo").focus()
        page.keyboard.press("3")
        expect(page.locator("#trial-announce")).to_have_text("Rated 3, right.")
        page.screenshot(path=str(artifacts / "browser-read-text-photo.png"), full_page=True)
    page.context.close()
    records = [json.loads(line) for line in (trial / "trial-log.jsonl").read_text().splitlines()]
    output, rating = records[-2:]
    assert output["tab"] == "Read text" and output["participant"] == "P11" and output["delivery"] == "spoken"
    assert output["settings"]["voice"] == "auto" and output["settings"]["rate_wpm"] == 175
    assert rating["kind"] == "rating" and rating["output_id"] == output["id"] and rating["rating"] == 3


def test_live_reading_says_each_sign_once(app, pw, chromium, artifacts, text_pages, tmp_path):
    url, _ = app
    signs = [text_pages["sign-sans-48"][0], text_pages["label-serif-24"][0]]
    video = write_y4m(tmp_path / "camera.y4m", signs, fps=10, seconds_per_photo=3.0)
    live_browser = launch_chromium(pw, chromium, fake_video=video)
    try:
        page = new_page(live_browser, url)
        with screenshot_on_failure(page, artifacts / "browser-read-text-live-FAILED.png"):
            page.get_by_role("tab", name="Camera", exact=True).filter(visible=True).click()
            expect(page.get_by_role("checkbox", name="Live reading (say new text as it appears)")).to_be_checked()
            toggle_accordion(page, "Speech")
            page.get_by_role("checkbox", name="Speak texts aloud").uncheck()  # announced only: quicker, quieter
            page.evaluate(_WATCH_JS)
            camera = page.locator("#rt-camera")
            camera.get_by_text("Click to Access Webcam").click()
            record = camera.get_by_role("button", name="capture photo")
            record.click()
            expect(record).to_contain_text("Stop")
            started = time.monotonic()
            expect(page.locator("#rt-announce")).not_to_be_empty(timeout=30_000)
            # Two loops of the video (6 s each): each sign is in view twice.
            while time.monotonic() - started < 14:
                page.wait_for_timeout(500)
            page.screenshot(path=str(artifacts / "browser-read-text-live.png"), full_page=True)
            log = page.evaluate("() => window.__rtLog")
            timing = page.locator("#rt-timing").inner_text()
            record.click()
        texts = [entry["text"] for entry in log if entry["text"]]
        assert not [e for e in log if e["problem"]], log
        assert "Delay" in timing, timing
        signs_said = ("EMERGENCY EXIT. Keep this door closed.", "Best before 12 MAY 2025. Store in a cool, dry place.")
        assert texts and all(text.startswith(signs_said) for text in texts), texts
        assert len(texts) == len(set(texts)) <= 2, f"a sign was said again: {texts}"
        assert len(texts) == 2, f"the second sign was never said: {texts}"
    finally:
        live_browser.close()
