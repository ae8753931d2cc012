"""The vision-language model in the browser (Debian chromium, playwright): the Caption tab's "Detailed" length
describes a photo with Alt+Shift+D, speaks it sentence by sentence in the browser's voice and announces it once; the
Ask tab's conversation answers follow-up questions with Enter and "New photo" starts over. The tiny SmolVLM has
random weights: what the page says is compared with `DescribeTask` run directly on the same weights."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.helpers import REPO, WAIT_MS, open_page, screenshot_on_failure, toggle_accordion

pytestmark = pytest.mark.browser

ARTIFACT_PREFIX = "browser-describe"
PHOTO = REPO / "assets" / "images" / "coffee.jpg"

# Records what the page asks the browser's voice to say (headless chromium has no voices to say it with).
_RECORD_SPEECH_JS = """() => {
    window.__spoken = [];
    window.__cancelled = 0;
    const synth = window.speechSynthesis;
    synth.speak = (utterance) => window.__spoken.push(utterance.text);
    const cancel = synth.cancel.bind(synth);
    synth.cancel = () => { window.__cancelled += 1; cancel(); };
}"""


def new_page(browser: Browser, url: str, tab: str) -> Page:
    page = open_page(browser, url, height=1400)
    page.get_by_role("tab", name=tab, exact=True).click()
    page.evaluate(_RECORD_SPEECH_JS)
    return page


def test_detailed_description_is_spoken_sentence_by_sentence(describe_app, browser, artifacts, describe_reference):
    from studio.tasks.describe import DETAIL_PROMPT, MAX_NEW_TOKENS

    url, _ = describe_app
    expected = describe_reference(PHOTO, [], DETAIL_PROMPT, MAX_NEW_TOKENS["detail"])
    page = new_page(browser, url, "Caption")
    with screenshot_on_failure(page, artifacts / "browser-describe-caption-FAILED.png"):
        page.locator("#cap-photo input[type=file]").set_input_files(str(PHOTO))
        expect(page.locator("#cap-photo img").first).to_be_visible(timeout=WAIT_MS)
        toggle_accordion(page, "Speech")
        page.get_by_role("radio", name="This browser's voice", exact=True).check()
        toggle_accordion(page, "What to say")
        page.get_by_role("radio", name=re.compile("^Detailed: a few sentences")).check()
        expect(page.locator("#cap-describe-detail")).to_be_visible()
        expect(page.locator("#cap-describe-photo")).to_be_hidden()
        expect(page.locator("#cap-stop")).to_be_visible()
        page.keyboard.press("Alt+Shift+D")

        announce = page.locator("#cap-announce")
        expect(announce).to_have_text(expected.text, timeout=WAIT_MS)
        expect(page.locator("#cap-text textarea")).to_have_value(expected.text)
        expect(page.locator("#cap-timing")).to_contain_text(re.compile(r"First words after \d+ ms"))
        expect(page.locator("#cap-runtime")).to_contain_text("Runs on: ONNX Runtime", timeout=WAIT_MS)
        page.wait_for_function(f"() => window.__spoken.length >= {len(expected.sentences)}", timeout=WAIT_MS)
        assert page.evaluate("window.__spoken") == [s.text for s in expected.sentences]
        page.screenshot(path=str(artifacts / "browser-describe-caption-detailed.png"), full_page=True)
    page.context.close()


def test_conversation_about_one_photo(describe_app, browser, artifacts, describe_reference):
    from studio.tasks.describe import MAX_NEW_TOKENS

    url, _ = describe_app
    first = describe_reference(PHOTO, [], "What is this?", MAX_NEW_TOKENS["answer"])
    history = [{"question": "What is this?", "answer": first.model_text}]
    second = describe_reference(PHOTO, history, "Is it hot?", MAX_NEW_TOKENS["answer"])
    page = new_page(browser, url, "Ask")
    with screenshot_on_failure(page, artifacts / "browser-describe-ask-FAILED.png"):
        page.locator("#ask-image input[type=file]").set_input_files(str(PHOTO))
        expect(page.locator("#ask-image img").first).to_be_visible(timeout=WAIT_MS)
        page.get_by_role("radio", name=re.compile("^Conversation")).check()
        expect(page.locator("#ask-converse")).to_be_visible()
        expect(page.locator("#ask-submit")).to_be_hidden()
        box = page.locator("#ask-question textarea")
        announce = page.locator("#ask-announce")
        page.keyboard.press("Alt+Shift+Q")
        page.keyboard.type("What is this?")
        page.keyboard.press("Enter")
        expect(announce).to_have_text(first.text, timeout=WAIT_MS)
        expect(box).to_have_value("")
        box.fill("Is it hot?")
        box.press("Enter")
        expect(announce).to_have_text(second.text, timeout=WAIT_MS)
        chat = page.locator("#ask-chat")
        for said in ("What is this?", first.text, "Is it hot?", second.text):
            expect(chat).to_contain_text(said, timeout=WAIT_MS)
        page.screenshot(path=str(artifacts / "browser-describe-ask-conversation.png"), full_page=True)
        page.locator("#ask-new-photo").click()
        expect(announce).to_have_text("Started over: give a new picture.")
        expect(chat).not_to_contain_text("Is it hot?")
    page.context.close()
