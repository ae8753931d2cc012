"""End-to-end in Debian chromium: create a classifier in the Fine-tune tab, add examples (uploads and a folder), train,
and read its held-out accuracy off the page; the numbers must be the ones the trained head really reaches."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from studio.classifiers.store import ClassifierStore
from tests.fixtures.finetune import shape_picture
from tests.helpers import WAIT_MS, launch_chromium, launched_app, open_page, screenshot_on_failure, toggle_accordion
from tests.inputs import write_y4m

pytestmark = pytest.mark.browser

ARTIFACT_PREFIX = "browser-finetune"


@pytest.fixture(scope="module")
def ft_browser_app(tmp_path_factory, tiny_clip_dir, trained_models_dir):
    """The real app on a copy of the models directory that holds the saved classifier “Shapes”."""
    yield from launched_app(tmp_path_factory, "ft-browser", trained_models_dir, {"zero-shot": tiny_clip_dir})


def test_create_add_train_and_see_accuracy(browser, ft_browser_app, artifacts, shapes_dir, tmp_path):
    url, models_dir = ft_browser_app
    page = open_page(browser, url, height=1600)
    announce = page.locator("#ft-announce")
    with screenshot_on_failure(page, artifacts / "browser-finetune-FAILED.png"):
        page.get_by_role("tab", name="Fine-tune").click()
        expect(page.locator("#ft-classifier input")).to_have_value("Colours")  # the saved one is chosen
        toggle_accordion(page, "New classifier")  # closed once classifiers exist
        page.get_by_label("Name of the new classifier").fill("Shapes")
        page.get_by_label("Its classes (separate them with commas)").fill("red, green, blue")
        page.get_by_role("button", name="Create classifier").click()
        expect(announce).to_contain_text("Created “Shapes” with 3 classes", timeout=WAIT_MS)

        pictures = [tmp_path / f"red-{i}.png" for i in range(2)]
        for i, p in enumerate(pictures):
            shape_picture("red", 500 + i).save(p)
        page.get_by_role("tab", name="Upload").click()
        page.locator("#ft-uploads input[type=file]").set_input_files([str(p) for p in pictures])
        page.get_by_role("button", name="Add uploaded pictures to the class").click()
        expect(announce).to_have_text("Added 2 examples.", timeout=WAIT_MS)
        expect(page.locator("#ft-gallery img")).to_have_count(2)

        page.get_by_role("tab", name="Folder").click()
        page.get_by_label("Folder on this computer with one sub-folder per class").fill(str(shapes_dir))
        page.get_by_role("button", name="Add the folder").click()
        expect(announce).to_contain_text("Added 36 examples", timeout=WAIT_MS)

        blend = page.locator("#ft-blend input[type=number]")
        blend.fill("1")
        blend.press("Enter")
        page.get_by_role("button", name="Train", exact=True).click()
        expect(announce).to_contain_text("held-out examples", timeout=120_000)
        text = announce.inner_text()
        blended = int(re.search(r"blended (\d+)%", text).group(1))
        zero_shot = int(re.search(r"zero-shot (\d+)%", text).group(1))
        assert blended >= 80 > 33 + 40  # 3 classes: chance is 33%
        expect(page.locator("#ft-accuracy")).to_contain_text("Linear probe")
        expect(page.locator("#ft-confusion-text")).to_contain_text("Confusion matrix: “red”:")
        expect(page.locator("#ft-loss-text")).to_contain_text("Loss curve: the loss went from")
        expect(page.locator("#ft-loss-plot img, #ft-loss-plot canvas, #ft-loss-plot svg").first).to_be_visible()

        page.get_by_role("button", name="Save this classifier").click()
        expect(announce).to_contain_text("Saved “Shapes” as version 1", timeout=120_000)
        saved = ClassifierStore(models_dir).load("Shapes")
        assert round(saved.head["accuracy"]["blended"] * 100) == blended
        assert round(saved.head["accuracy"]["zero_shot"] * 100) == zero_shot
        expect(page.locator("#ft-saved")).to_contain_text("Shapes")
        page.screenshot(path=str(artifacts / "browser-finetune.png"), full_page=True)


def test_live_camera_in_the_zero_shot_tab_uses_a_saved_classifier(pw, chromium, ft_browser_app, artifacts, tmp_path):
    """The Zero-shot tab's camera with “Colours” chosen: the live scores are for its classes, not the typed labels."""
    import numpy as np

    url, _ = ft_browser_app
    frames = [np.asarray(shape_picture(c, 70 + i, (640, 480))) for i, c in enumerate(("red", "blue"))]
    browser = launch_chromium(pw, chromium, fake_video=write_y4m(tmp_path / "camera.y4m", frames))
    try:
        page = open_page(browser, url)
        with screenshot_on_failure(page, artifacts / "browser-finetune-camera-FAILED.png"):
            page.get_by_role("tab", name="Camera").click()
            chooser = page.get_by_label("Saved classifier (made in the Fine-tune tab) instead of the labels")
            chooser.click()
            page.get_by_role("option", name="Colours", exact=True).click()
            camera = page.locator("#zs-camera")
            camera.get_by_text("Click to Access Webcam").click()
            record = camera.get_by_role("button", name="capture photo")
            expect(record).to_contain_text("Record")
            record.click()
            expect(page.locator("#zs-timing")).to_contain_text("Delay", timeout=WAIT_MS)
            expect(page.locator("#zs-announce")).to_contain_text(re.compile(r"Best match: (red|green|blue)"))
            shown = page.locator('#zs-scores [data-testid$="-confidence-set"] dt').all_inner_texts()
            assert sorted(t.strip() for t in shown) == ["blue", "green", "red"]
            page.screenshot(path=str(artifacts / "browser-finetune-camera.png"), full_page=True)
            record.click()
    finally:
        browser.close()
