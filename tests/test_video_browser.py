"""The Video tab end to end: the real app in Debian chromium, driven with playwright as a user would.

Results are compared with `VideoTask` on the same tiny random VideoMAE and the same file, which the task tests compare
with transformers; the camera test plays a video of real photos as Chromium's fake camera.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from studio.tasks.video import VideoTask
from tests.helpers import WAIT_MS, launch_chromium, open_page, screenshot_on_failure
from tests.inputs import write_y4m

pytestmark = pytest.mark.browser

ARTIFACT_PREFIX = "browser-video"


@pytest.fixture(scope="module")
def reference(tiny_videomae_dir, video_app) -> VideoTask:
    return VideoTask.load(str(tiny_videomae_dir), video_app[1], backend="onnx")


def test_upload_a_clip_and_see_the_top_actions(video_app, browser, artifacts, reference, clips):
    url, _ = video_app
    expected = reference.classify_video(clips["long"], 2.0, 1.0)
    page = open_page(browser, url, height=1400)
    with screenshot_on_failure(page, artifacts / "browser-video-upload-FAILED.png"):
        page.get_by_role("tab", name="Video", exact=True).click()
        page.locator("#vid-video input[type=file]").set_input_files(str(clips["long"]))
        page.get_by_label("Seconds per window (0 or empty: the model's own clip length)").fill("2")
        page.get_by_label("Seconds between windows (0 or empty: same as the window)").fill("1")
        page.get_by_role("button", name="Classify video").click()
        expect(page.locator("#vid-announce")).to_contain_text(f"Most likely action: {expected.overall[0]['label']}")
        shown = page.locator('#vid-scores [data-testid$="-confidence-set"] dt').all_inner_texts()
        assert [s.strip() for s in shown] == [t["label"] for t in expected.overall]
        expect(page.locator("#vid-timeline")).to_contain_text("Window by window")
        expect(page.locator("#vid-plot")).to_be_visible()
        expect(page.locator("#vid-runtime")).to_contain_text("ONNX Runtime")
        page.screenshot(path=str(artifacts / "browser-video-upload.png"), full_page=True)


def test_live_camera_is_classified_every_few_seconds(video_app, pw, chromium, artifacts, photo_arrays, tmp_path):
    url, _ = video_app
    camera_file = write_y4m(tmp_path / "camera.y4m", [photo_arrays["chelsea"], photo_arrays["astronaut"]])
    browser = launch_chromium(pw, chromium, fake_video=camera_file)
    try:
        page = open_page(browser, url)
        with screenshot_on_failure(page, artifacts / "browser-video-camera-FAILED.png"):
            page.get_by_role("tab", name="Video", exact=True).click()
            page.get_by_role("tab", name="Camera").filter(visible=True).click()
            camera = page.locator("#vid-camera")
            camera.get_by_text("Click to Access Webcam").click()
            record = camera.get_by_role("button", name="capture photo")
            record.click()
            expect(page.locator("#vid-timing")).to_contain_text("Collecting camera frames", timeout=WAIT_MS)
            expect(page.locator("#vid-announce")).to_contain_text("Action:", timeout=WAIT_MS)
            expect(page.locator("#vid-timing")).to_contain_text(re.compile(r"Looked at the last \d"))
            labels = page.locator('#vid-scores [data-testid$="-confidence-set"] dt').all_inner_texts()
            assert len(labels) == 5
            page.screenshot(path=str(artifacts / "browser-video-camera.png"), full_page=True)
            record.click()
    finally:
        browser.close()
