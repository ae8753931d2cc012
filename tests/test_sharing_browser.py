"""The shared app in Debian chromium, as a visitor meets it: gradio's login page first, then the app, whose model
picker says which folders it takes and refuses one outside them with a sentence, and whose Fine-tune folder box says
the same before anything is typed."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.helpers import WAIT_MS, free_port, open_page, screenshot_on_failure

pytestmark = pytest.mark.browser

ARTIFACT_PREFIX = "browser-sharing"  # screenshots: test-artifacts/browser-sharing-*.png
LOGIN = ("presenter", "room42")


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    """`studio --shared --allow-path DIR --auth presenter:room42`: (URL, allowed folder, outside folder)."""
    from studio.ui.app import launch

    root = tmp_path_factory.mktemp("sharing-browser")
    (root / "exported").mkdir()
    (root / "allowed").mkdir()
    (root / "outside").mkdir()
    port = free_port()
    demo = launch(
        port=port, models_dir=root / "exported", open_browser=False, block=False, shared=True,
        allow_paths=[root / "allowed"], logins=[LOGIN],
    )  # fmt: skip
    try:
        yield f"http://127.0.0.1:{port}/", root / "allowed", root / "outside"
    finally:
        demo.close()


def test_login_first_then_folders_outside_the_allowed_one_are_refused(browser, app, artifacts):
    url, allowed, outside = app
    page = open_page(browser, url)
    with screenshot_on_failure(page, artifacts / f"{ARTIFACT_PREFIX}-login-FAILED.png"):
        expect(page.get_by_text("Log in with the name and password the presenter gave you.")).to_be_visible()
        expect(page.get_by_text("Multimodal Studio")).to_have_count(0)  # nothing of the app before the login
        page.screenshot(path=str(artifacts / f"{ARTIFACT_PREFIX}-login.png"))
        page.get_by_label("username").fill(LOGIN[0])
        page.get_by_label("password").fill("wrong")
        page.keyboard.press("Enter")
        expect(page.get_by_text("Incorrect Credentials")).to_be_visible()
        page.get_by_label("username").fill(LOGIN[0])  # the login page empties it after a wrong password
        page.get_by_label("password").fill(LOGIN[1])
        page.get_by_role("button", name="Login").click()
        expect(page.get_by_role("heading", name="Multimodal Studio")).to_be_visible(timeout=WAIT_MS)

    with screenshot_on_failure(page, artifacts / f"{ARTIFACT_PREFIX}-picker-FAILED.png"):
        page.get_by_role("button", name="Model and runtime").filter(visible=True).first.click()
        picker = page.locator("#zs-model input").filter(visible=True)
        expect(page.get_by_text(f"type a model folder inside {allowed}").filter(visible=True)).to_be_visible()
        picker.fill(f"{allowed}/../outside")
        picker.press("Enter")
        state = page.locator("#zs-model-state").filter(visible=True)
        expect(state).to_contain_text("This app is shared, so models come from its list")
        expect(state).to_contain_text(f"“{allowed}/../outside” is not one of them.")
        page.screenshot(path=str(artifacts / f"{ARTIFACT_PREFIX}-picker-refused.png"), full_page=True)

    with screenshot_on_failure(page, artifacts / f"{ARTIFACT_PREFIX}-finetune-FAILED.png"):
        page.get_by_role("tab", name="Fine-tune").click()
        page.get_by_role("tab", name="Folder").click()
        box = page.get_by_label("Folder on this computer with one sub-folder per class")
        expect(box).to_be_visible()
        expect(
            page.get_by_text(f"This app is shared: only folders inside {allowed}.").filter(visible=True)
        ).to_be_visible()
