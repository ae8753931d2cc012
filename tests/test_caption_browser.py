"""The Caption tab end to end: the real app in Debian chromium, driven with playwright as a user would.

The tiny BLIP has random weights, so nothing here expects particular words: the photo test compares what the page
shows and announces with `CaptionTask` run directly on the same weights and photo; the camera test checks that live
describe announces, with a bounded delay, and never announces the same words twice in a row.
"""

from __future__ import annotations

import io
import re
import time
import wave

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.helpers import (
    DELAY,
    REPO,
    WAIT_MS,
    assert_speech_panel_named,
    launch_chromium,
    open_page,
    screenshot_on_failure,
    toggle_accordion,
    within,
)
from tests.inputs import letterbox, write_y4m

pytestmark = pytest.mark.browser

ARTIFACT_PREFIX = "browser-caption"  # screenshots: test-artifacts/browser-caption-*.png (the `artifacts` fixture)
PHOTO = REPO / "assets" / "images" / "chelsea.jpg"

# The audio players inside #cap-audio, through the shadow roots gradio's waveform player renders them in.
_AUDIO_PLAYERS_JS = """() => {
    const found = [];
    const walk = root => {
        for (const el of root.querySelectorAll('*')) {
            if (el.tagName === 'AUDIO') found.push({src: el.src, duration: el.duration, ready: el.readyState});
            if (el.shadowRoot) walk(el.shadowRoot);
        }
    };
    const block = document.getElementById('cap-audio');
    if (block) walk(block);
    return found;
}"""

# Records every change of the announced description and of the spoken file, as {text, problem, audio} entries (one
# per distinct state, read 100 ms after the DOM settles). A new speech file means the app said something.
_WATCH_ANNOUNCEMENTS_JS = """() => {
    window.__capLog = [];
    let pending = null;
    const snapshot = () => {
        pending = null;
        const region = document.getElementById('cap-announce');
        const link = document.querySelector('#cap-audio a[download]');
        const entry = {
            text: region ? region.textContent.trim() : null,
            problem: region ? region.classList.contains('studio-problem') : false,
            audio: link ? link.getAttribute('href') : null,
        };
        const last = window.__capLog[window.__capLog.length - 1];
        if (!last || last.text !== entry.text || last.audio !== entry.audio) window.__capLog.push(entry);
    };
    const observer = new MutationObserver(() => { if (!pending) pending = setTimeout(snapshot, 100); });
    // The live region is re-rendered inside its gr.HTML block, so the block is what is watched.
    observer.observe(document.getElementById('cap-announce').parentElement,
                     {subtree: true, childList: true, characterData: true, attributes: true});
    observer.observe(document.getElementById('cap-audio'),
                     {subtree: true, childList: true, characterData: true, attributes: true});
    snapshot();
}"""


# Helpers -------------------------------------------------------------------------------------------------------


def new_page(browser: Browser, url: str) -> Page:
    """A fresh page on the Caption tab."""
    page = open_page(browser, url)
    page.get_by_role("tab", name="Caption", exact=True).click()
    expect(page.locator("#cap-describe-photo")).to_be_visible()
    return page


def set_slider_to_minimum(page: Page, label: str) -> str:
    """Types a slider's minimum into its number box; returns that minimum."""
    box = page.get_by_role("spinbutton", name=label)
    minimum = box.get_attribute("min")
    assert minimum is not None, f"the {label!r} slider has no minimum"
    box.fill(minimum)
    box.press("Enter")
    expect(page.get_by_role("slider", name=label)).to_have_value(minimum)
    return minimum


def speech_link(page: Page) -> str | None:
    link = page.locator("#cap-audio a[download]")
    return link.get_attribute("href") if link.count() else None


def wav_seconds(data: bytes) -> float:
    with wave.open(io.BytesIO(data), "rb") as w:
        assert w.getnchannels() == 1 and w.getsampwidth() == 2, (w.getnchannels(), w.getsampwidth())
        return w.getnframes() / w.getframerate()


# Tests ---------------------------------------------------------------------------------------------------------


def test_describe_photo_with_the_keyboard_and_the_server_voice(caption_app, browser, artifacts, caption_reference):
    """Alt+Shift+D describes the uploaded photo: shown, announced, and spoken by the server when asked to."""
    url, _ = caption_app
    expected = caption_reference(PHOTO)  # the default "Short" settings: greedy, at most 12 word pieces
    page = new_page(browser, url)
    with screenshot_on_failure(page, artifacts / "browser-caption-photo-FAILED.png"):
        page.locator("#cap-photo input[type=file]").set_input_files(str(PHOTO))
        expect(page.locator("#cap-photo img").first).to_be_visible()
        page.keyboard.press("Alt+Shift+D")

        announce = page.locator("#cap-announce")
        expect(announce).to_have_text(expected.text)
        expect(announce).to_have_attribute("role", "status")
        expect(announce).to_have_attribute("aria-live", "polite")
        expect(announce).not_to_have_class(re.compile("studio-problem"))
        expect(page.locator("#cap-text textarea")).to_have_value(expected.text)
        expect(page.locator("#cap-timing")).to_contain_text(re.compile(r"Took \d+ ms"))
        expect(page.locator("#cap-runtime")).to_contain_text("Runs on: ONNX Runtime")

        # The server's voice, chosen in the Speech panel: a new description comes with a sound file that plays.
        before = speech_link(page)
        toggle_accordion(page, "Speech")
        page.get_by_role("radio", name="The server's voice (espeak-ng)", exact=True).check()
        page.keyboard.press("Alt+Shift+D")
        page.wait_for_function(
            "before => { const a = document.querySelector('#cap-audio a[download]');"
            " return a && a.getAttribute('href') !== before; }",
            arg=before,
        )
        href = speech_link(page)
        assert href and href.endswith(".wav"), href
        expect(announce).to_have_text(expected.text)

        response = page.request.get(href)
        assert response.ok, response.status
        seconds = wav_seconds(response.body())
        assert seconds > 0.5, seconds
        # The player loaded that file: an <audio> with a source and the file's duration.
        page.wait_for_function(f"() => ({_AUDIO_PLAYERS_JS})().some(a => a.src && a.duration > 0)", timeout=WAIT_MS)
        players = [a for a in page.evaluate(_AUDIO_PLAYERS_JS) if a["src"] and a["duration"] > 0]
        assert players, page.evaluate(_AUDIO_PLAYERS_JS)
        assert players[-1]["duration"] == pytest.approx(seconds, abs=0.1), (players, seconds)
        page.screenshot(path=str(artifacts / "browser-caption-photo-described.png"), full_page=True)
    page.context.close()


def test_live_describe_announces_only_new_words(
    caption_app, pw, chromium, artifacts, photo_arrays, caption_reference, tmp_path
):
    """A fake camera alternating two photos: descriptions come with a bounded delay, never twice the same in a row."""
    url, _ = caption_app
    shown = [photo_arrays["chelsea"], photo_arrays["astronaut"]]
    video = write_y4m(tmp_path / "camera.y4m", shown, seconds_per_photo=2.0)
    # What the model says of each half of the video; if these differ, both must be announced as the video loops.
    frames = [letterbox(photo, 640, 480) for photo in shown]
    from PIL import Image

    for i, frame in enumerate(frames):
        Image.fromarray(frame).save(tmp_path / f"frame{i}.png")
    distinct_captions = len({caption_reference(tmp_path / f"frame{i}.png").text for i in range(len(frames))})

    live_browser = launch_chromium(pw, chromium, fake_video=video)
    try:
        page = new_page(live_browser, url)
        with screenshot_on_failure(page, artifacts / "browser-caption-live-FAILED.png"):
            page.get_by_role("tab", name="Camera", exact=True).click()
            expect(page.get_by_role("checkbox", name="Live describe (speak when the scene changes)")).to_be_checked()
            interval = float(set_slider_to_minimum(page, "Look every (seconds)"))
            # Speak at every look that finds new words: then only the "never repeat" rule keeps repeats quiet.
            set_slider_to_minimum(page, "How much the scene must change to speak")
            # The server's voice, so that every announcement leaves a new sound file to count.
            toggle_accordion(page, "Speech")
            page.get_by_role("radio", name="The server's voice (espeak-ng)", exact=True).check()
            page.evaluate(_WATCH_ANNOUNCEMENTS_JS)

            camera = page.locator("#cap-camera")
            camera.get_by_text("Click to Access Webcam").click()
            record = camera.get_by_role("button", name="capture photo")
            expect(record).to_contain_text("Record")
            started = time.monotonic()
            record.click()
            expect(record).to_contain_text("Stop")
            expect(page.locator("#cap-announce")).not_to_be_empty(timeout=15_000)
            expect(page.locator("#cap-timing")).to_contain_text("Delay", timeout=15_000)
            assert time.monotonic() - started < 15

            page.wait_for_timeout(8_000)  # two loops of the video
            page.screenshot(path=str(artifacts / "browser-caption-live-streaming.png"), full_page=True)
            timing = page.locator("#cap-timing").inner_text()
            log = page.evaluate("() => window.__capLog")
            record.click()  # Stop
            expect(record).to_contain_text("Record")

        delay = DELAY.search(timing)
        assert delay, timing
        assert int(delay.group(1)) < 5000, timing
        assert int(delay.group(2)) >= 8 / interval / 2, f"the camera was looked at too rarely: {timing}"

        assert not [e for e in log if e["problem"]], log
        # Announcements: each new speech file, with the words on screen when it came.
        announcements = []
        for entry in log:
            if entry["audio"] and (not announcements or entry["audio"] != announcements[-1]["audio"]):
                announcements.append(entry)
            elif announcements and entry["audio"] == announcements[-1]["audio"]:
                announcements[-1] = entry  # the same announcement, its text rendered a moment later
        texts = [a["text"] for a in announcements]
        assert texts and all(texts), log
        repeats = [(a, b) for a, b in zip(texts, texts[1:]) if a == b]
        assert not repeats, f"the same words were announced twice in a row: {texts}"
        if distinct_captions > 1:
            assert len(set(texts)) >= 2, f"the second photo was never described: {texts}"
    finally:
        live_browser.close()


def test_caption_controls_have_accessible_names(caption_app, browser, artifacts):
    """Every control of the Caption tab can be found by its accessible name, inside the element we mean."""
    from studio.ui.caption_tab import VERBOSITY_CHOICES

    url, _ = caption_app
    page = new_page(browser, url)
    with screenshot_on_failure(page, artifacts / "browser-caption-a11y-FAILED.png"):
        within(page.get_by_role("button", name="Drop an image file here to upload"), "cap-photo")
        within(page.get_by_role("button", name="Describe photo", exact=True), "cap-describe-photo")

        page.get_by_role("tab", name="Camera", exact=True).click()
        within(page.get_by_role("checkbox", name="Live describe (speak when the scene changes)"), "cap-live")
        within(page.get_by_role("button", name="Click to Access Webcam"), "cap-camera")
        within(page.get_by_role("button", name="Describe now", exact=True), "cap-describe-camera")
        within(page.get_by_role("slider", name="Look every (seconds)"), "cap-interval")
        within(page.get_by_role("slider", name="How much the scene must change to speak"), "cap-threshold")

        toggle_accordion(page, "Speech")
        browser_voice = assert_speech_panel_named(page, "cap", "Speak descriptions aloud")
        assert browser_voice.evaluate("e => e.tagName") == "SELECT"
        expect(page.locator("label[for=cap-browser-voice]")).to_have_text("Browser voice")

        toggle_accordion(page, "What to say")
        for name, _ in VERBOSITY_CHOICES:
            within(page.get_by_role("radio", name=name, exact=True), "cap-verbosity")
        within(page.get_by_label("Start the description with (optional)", exact=True), "cap-prefix")
        within(page.get_by_role("checkbox", name="Describe people's age and looks"), "cap-people")

        toggle_accordion(page, "Advanced decoding")
        for label, element_id in [
            ("Beams (1 = greedy)", "cap-beams"),
            ("Most word pieces", "cap-max-new"),
            ("Repetition penalty", "cap-rep"),
            ("Never repeat phrases of this length", "cap-ngram"),
        ]:
            within(page.get_by_role("slider", name=label), element_id)

        toggle_accordion(page, "Model and runtime")
        within(page.get_by_role("combobox", name="Model", exact=True), "cap-model")

        announce = page.locator("#cap-announce")
        expect(announce).to_have_attribute("role", "status")
        expect(announce).to_have_attribute("aria-live", "polite")
        page.screenshot(path=str(artifacts / "browser-caption-a11y.png"), full_page=True)
    page.context.close()
