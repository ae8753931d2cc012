"""The Ask tab end to end: the real app in Debian chromium, driven with playwright as a user would.

The tiny models have random weights, so nothing here expects particular words: the typed-question test compares what
the page shows and announces with `VqaTask` run directly on the same weights, photo and question; the spoken-question
test plays espeak-ng's recording of a question as chromium's microphone and compares what the page heard with
`TranscribeTask` run on the very recording the app received.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from studio.media.audio import loudness_dbfs
from tests.helpers import (
    REPO,
    assert_speech_panel_named,
    launch_chromium,
    open_page,
    screenshot_on_failure,
    toggle_accordion,
    within,
)

pytestmark = pytest.mark.browser

ARTIFACT_PREFIX = "browser-ask"  # screenshots: test-artifacts/browser-ask-*.png (the `artifacts` fixture)
PHOTO = REPO / "assets" / "images" / "coffee.jpg"
QUESTION = "what is on the table?"
RECORD_MS = 3_000  # long enough for the whole spoken question, which lasts under 2 seconds


# Fixtures ------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def microphone_wav(spoken_question_wav, tmp_path_factory) -> Path:
    """The spoken question as chromium's fake microphone plays it: 16-bit PCM mono at 48 kHz, with a second of
    silence on either side (chromium loops the file, so the question is heard whole wherever recording starts)."""
    out = tmp_path_factory.mktemp("microphone") / "question-48k.wav"
    command = ["sox", str(spoken_question_wav), "-r", "48000", "-b", "16", "-c", "1", str(out), "pad", "1", "1"]
    subprocess.run(command, check=True, capture_output=True, timeout=30)
    return out


def new_page(browser: Browser, url: str) -> Page:
    """A fresh page on the Ask tab."""
    page = open_page(browser, url, height=1100)
    page.get_by_role("tab", name="Ask", exact=True).click()
    expect(page.locator("#ask-question textarea")).to_be_visible()
    return page


def shown_answers(page: Page) -> list[dict]:
    """The answers #ask-answers lists, top first: their text and the score their bar shows."""
    return page.evaluate(
        """() => [...document.querySelectorAll('#ask-answers [data-testid$="-confidence-set"]')].map(s => ({
            answer: s.querySelector('dt').textContent.trim(),
            value: Number(s.querySelector('meter').getAttribute('value')),
        }))"""
    )


# Tests ---------------------------------------------------------------------------------------------------------


def test_typed_question_with_the_keyboard(ask_app, browser, artifacts, vqa_reference):
    """Alt+Shift+Q goes to the question box, Enter asks: the answer is shown, announced and listed as VqaTask says."""
    url, _ = ask_app
    expected = vqa_reference(PHOTO, QUESTION)  # the tab's defaults: Automatic runtime, so the ONNX export
    page = new_page(browser, url)
    with screenshot_on_failure(page, artifacts / "browser-ask-typed-FAILED.png"):
        page.locator("#ask-image input[type=file]").set_input_files(str(PHOTO))
        expect(page.locator("#ask-image img").first).to_be_visible()

        box = page.locator("#ask-question textarea")
        expect(box).not_to_be_focused()
        page.keyboard.press("Alt+Shift+Q")
        expect(box).to_be_focused()
        page.keyboard.type(QUESTION)
        page.keyboard.press("Enter")

        announce = page.locator("#ask-announce")
        expect(announce).to_have_text(expected.text)
        expect(announce).to_have_attribute("role", "status")
        expect(announce).to_have_attribute("aria-live", "polite")
        expect(announce).not_to_have_class(re.compile("studio-problem"))
        expect(page.locator("#ask-answers [data-testid$='-confidence-set']")).to_have_count(len(expected.answers))
        shown = shown_answers(page)
        assert [s["answer"] for s in shown] == [a["answer"] for a in expected.answers]
        assert [s["value"] for s in shown] == pytest.approx([a["score"] for a in expected.answers], abs=1e-4)
        expect(page.locator("#ask-runtime")).to_contain_text("Runs on: ONNX Runtime")
        expect(page.locator("#ask-timing")).to_contain_text(re.compile(r"Took \d+ ms"))
        page.screenshot(path=str(artifacts / "browser-ask-typed-question.png"), full_page=True)
    page.context.close()


def test_spoken_question_from_the_microphone(ask_app, pw, chromium, artifacts, microphone_wav, transcriber, tmp_path):
    """Chromium's fake microphone says the question: the transcript fills the question box and is announced."""
    url, _ = ask_app
    mic_browser = launch_chromium(pw, chromium, fake_audio=microphone_wav)
    try:
        page = new_page(mic_browser, url)
        with screenshot_on_failure(page, artifacts / "browser-ask-spoken-FAILED.png"):
            mic = page.locator("#ask-mic")
            mic.get_by_role("button", name="Record", exact=True).click()
            stop = mic.get_by_role("button", name="Stop", exact=True).filter(visible=True)
            expect(stop).to_be_visible()
            page.wait_for_timeout(RECORD_MS)
            stop.click()

            heard = page.locator("#ask-heard")
            expect(heard).to_contain_text("Heard:")
            expect(heard).to_have_attribute("role", "status")
            expect(heard).not_to_have_class(re.compile("studio-problem"))
            # The recording the app received, as the component now links it: what the transcript must be of.
            link = mic.locator("a[download]")
            expect(link).to_have_count(1)
            response = page.request.get(link.get_attribute("href"))
            assert response.ok, response.status
            recording = tmp_path / "recorded.wav"
            recording.write_bytes(response.body())

            waveform = transcriber.waveform(recording)  # raises if silent, too short or unreadable
            assert 2.0 < waveform.duration_s < RECORD_MS / 1000 + 2, waveform.duration_s
            assert loudness_dbfs(waveform) > -40, "the fake microphone's speech did not reach the recording"
            expected = transcriber(recording).text
            expect(page.locator("#ask-question textarea")).to_have_value(expected)
            expect(heard).to_have_text(f"Heard: “{expected}”. Check the question, then press Ask or Enter.")
            page.screenshot(path=str(artifacts / "browser-ask-spoken-question.png"), full_page=True)
    finally:
        mic_browser.close()


def test_ask_controls_have_accessible_names(ask_app, browser, artifacts):
    """Every control of the Ask tab can be found by its accessible name, inside the element we mean."""
    url, _ = ask_app
    page = new_page(browser, url)
    with screenshot_on_failure(page, artifacts / "browser-ask-a11y-FAILED.png"):
        within(page.get_by_role("button", name="Drop an image file here to upload"), "ask-image")
        within(page.get_by_role("textbox", name="Your question", exact=True), "ask-question")
        within(page.get_by_role("button", name="Ask", exact=True), "ask-submit")
        within(page.get_by_role("button", name="Record", exact=True), "ask-mic")
        within(page.get_by_role("checkbox", name="Describe people's age and looks"), "ask-people")

        toggle_accordion(page, "Speech")
        assert_speech_panel_named(page, "ask", "Speak answers aloud")
        toggle_accordion(page, "Speech")

        toggle_accordion(page, "Question answering model")
        within(page.get_by_role("combobox", name="Question answering model", exact=True), "ask-model")
        toggle_accordion(page, "Question answering model")
        toggle_accordion(page, "Speech-to-text model")
        within(page.get_by_role("combobox", name="Speech-to-text model", exact=True), "stt-model")

        for region in ("ask-announce", "ask-heard"):
            expect(page.locator(f"#{region}")).to_have_attribute("role", "status")
            expect(page.locator(f"#{region}")).to_have_attribute("aria-live", "polite")
        page.screenshot(path=str(artifacts / "browser-ask-a11y.png"), full_page=True)
    page.context.close()


def test_the_two_model_pickers_have_different_accessible_names(ask_app, browser):
    url, _ = ask_app
    page = new_page(browser, url)
    try:
        toggle_accordion(page, "Question answering model")
        toggle_accordion(page, "Speech-to-text model")
        names = []
        for element_id in ("ask-model", "stt-model"):
            snapshot = page.locator(f"#{element_id}").get_by_role("combobox").aria_snapshot()
            names.append(re.search(r'combobox "([^"]*)"', snapshot).group(1))
        assert names[0] != names[1], names
    finally:
        page.context.close()
