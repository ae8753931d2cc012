"""The Video tab of the launched app: through its HTTP API (gradio_client) and in Debian chromium (playwright).

Results are compared with `VideoTask` on the same tiny random VideoMAE and the same file, which the task tests compare
with transformers; the camera test plays a video of real photos as Chromium's fake camera.
"""

from __future__ import annotations

import re

import pytest
from gradio_client import Client, handle_file
from playwright.sync_api import expect

from studio.tasks.video import VideoTask
from tests.helpers import (
    WAIT_MS,
    assert_plain_sentence,
    launch_chromium,
    open_page,
    outputs_and_toasts,
    screenshot_on_failure,
    text_of,
)
from tests.inputs import write_y4m

ARTIFACT_PREFIX = "browser-video"


@pytest.fixture(scope="module")
def client(video_app):
    return Client(video_app[0], verbose=False)


@pytest.fixture(scope="module")
def reference(tiny_videomae_dir, video_app) -> VideoTask:
    return VideoTask.load(str(tiny_videomae_dir), video_app[1], backend="onnx")


def _video(path):
    return handle_file(str(path))


def _runtime(tiny_videomae_dir):
    """Model, backend, device, and the typed actions (none: VideoMAE knows its own)."""
    return [str(tiny_videomae_dir), "onnx", "cpu", ""]


def test_classify_video_equals_task(client, reference, tiny_videomae_dir, clips):
    scores, announce, plot, timeline, timing, badge = client.predict(
        _video(clips["long"]), 2.0, 1.0, *_runtime(tiny_videomae_dir), api_name="/classify_video"
    )
    expected = reference.classify_video(clips["long"], 2.0, 1.0)
    assert [c["label"] for c in scores["confidences"]] == [t["label"] for t in expected.overall]
    for shown, want in zip(scores["confidences"], expected.overall):
        assert shown["confidence"] == pytest.approx(want["score"], abs=1e-6)
    assert text_of(announce).startswith(f"Most likely action: {expected.overall[0]['label']}")
    assert plot["visible"] is True and plot["value"]["type"] == "matplotlib"  # 11 windows: a timeline plot
    assert timeline.count("\n- ") == len(expected.windows) == 11
    assert "0:00.0–0:02.0" in timeline and expected.windows[0].top[0]["label"] in timeline
    assert "ONNX Runtime" in badge and "CPU" in badge
    assert "11 windows of 2 s every 1 s" in timing


def test_one_window_has_no_plot(client, tiny_videomae_dir, clips):
    _, announce, plot, timeline, _, _ = client.predict(
        _video(clips["short"]), 10.0, None, *_runtime(tiny_videomae_dir), api_name="/classify_video"
    )
    assert plot == {"__type__": "update", "visible": False, "value": None} and "Window by window" not in timeline
    assert "Most likely action" in text_of(announce)


def test_typed_actions_with_xclip(client, video_app, tiny_xclip_dir, tiny_videomae_dir, clips):
    shown = client.predict(str(tiny_xclip_dir), api_name="/video_labels_box")
    assert shown["visible"] is True
    assert client.predict(str(tiny_videomae_dir), api_name="/video_labels_box")["visible"] is False
    typed = "waving a hand, juggling balls, drinking coffee"
    scores, announce, plot, timeline, _, badge = client.predict(
        _video(clips["long"]), 4.0, None, str(tiny_xclip_dir), "torch", "cpu", typed, api_name="/classify_video"
    )  # PyTorch: the X-CLIP export and its parity are tested in test_video.py
    expected = VideoTask.load(str(tiny_xclip_dir), video_app[1], backend="torch").classify_video(
        clips["long"], 4.0, labels=typed
    )
    assert [c["label"] for c in scores["confidences"]] == [t["label"] for t in expected.overall]
    for got, want in zip(scores["confidences"], expected.overall):
        assert got["confidence"] == pytest.approx(want["score"], abs=1e-6)
    assert plot["visible"] is True and timeline.count("\n- ") == 3 and "PyTorch" in badge
    job = client.submit(
        _video(clips["short"]), None, None, str(tiny_xclip_dir), "torch", "cpu", "", api_name="/classify_video"
    )
    outputs, toasts = outputs_and_toasts(job)
    assert_plain_sentence(text_of(outputs[1]), "type at least two")


@pytest.mark.parametrize("case", ["one-frame", "corrupt", "no-video"])
def test_bad_video_gets_a_sentence_and_the_app_keeps_serving(case, client, tiny_videomae_dir, clips, tmp_path):
    if case == "corrupt":
        bad = tmp_path / "broken.mp4"
        bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x13" * 5000)
        video = _video(bad)
    else:
        video = _video(clips["one-frame"]) if case == "one-frame" else None
    job = client.submit(video, None, None, *_runtime(tiny_videomae_dir), api_name="/classify_video")
    outputs, toasts = outputs_and_toasts(job)
    sentence = text_of(outputs[1])
    assert_plain_sentence(sentence)
    assert {"one-frame": "one picture", "corrupt": "cannot be read", "no-video": "no video yet"}[case] in sentence
    assert (sentence, "warning") in toasts
    # Still serving.
    again = client.predict(_video(clips["short"]), None, None, *_runtime(tiny_videomae_dir), api_name="/classify_video")
    assert "Most likely action" in text_of(again[1])


def test_a_long_timeline_lists_runs_of_the_same_action():
    from studio.ui.video_tab import MAX_LISTED_WINDOWS, timeline_text

    def window(i, label):
        return {"start_s": i * 2.0, "end_s": i * 2.0 + 2, "top": [{"label": label, "score": 0.5 + i / 1000}]}

    def result_of(windows, notices=()):  # the video service's result, as far as the timeline reads it
        return {
            "overall": [{"label": "running", "score": 0.6}],
            "windows": windows,
            "cancelled": False,
            "notices": list(notices),
        }

    labels = ["running"] * 100 + ["jumping"] * 50 + ["running"] * 30
    windows = [window(i, label) for i, label in enumerate(labels)]
    text = timeline_text(result_of(windows))
    assert len(windows) > MAX_LISTED_WINDOWS
    assert text.count("\n- ") == 3
    assert "- 0:00.0–3:20.0: running (100 windows, up to 60%)" in text
    assert "- 3:20.0–5:00.0: jumping (50 windows, up to 65%)" in text
    assert "- 5:00.0–6:00.0: running (30 windows, up to 68%)" in text
    short = timeline_text(result_of(windows[:3], notices=["Part is damaged."]))
    assert short.count("\n- ") == 3 and short.endswith("Part is damaged.")


@pytest.mark.browser
def test_upload_a_clip_and_see_the_top_actions(video_app, browser, artifacts, reference, clips):
    url, _ = video_app
    expected = reference.classify_video(clips["long"], 2.0, 1.0)
    page = open_page(browser, url, height=1400)
    with screenshot_on_failure(page, artifacts / "browser-video-upload-FAILED.png"):
        page.get_by_role("tab", name="Video", exact=True).click()
        page.locator("#vid-video input[type=file]").set_input_files(str(clips["long"]))
        page.get_by_label("Seconds per window (empty: the model's own clip length)").fill("2")
        page.get_by_label("Seconds between windows (empty: same as the window)").fill("1")
        page.get_by_role("button", name="Classify video").click()
        expect(page.locator("#vid-announce")).to_contain_text(f"Most likely action: {expected.overall[0]['label']}")
        shown = page.locator('#vid-scores [data-testid$="-confidence-set"] dt').all_inner_texts()
        assert [s.strip() for s in shown] == [t["label"] for t in expected.overall]
        expect(page.locator("#vid-timeline")).to_contain_text("Window by window")
        expect(page.locator("#vid-plot")).to_be_visible()
        expect(page.locator("#vid-runtime")).to_contain_text("ONNX Runtime")
        page.screenshot(path=str(artifacts / "browser-video-upload.png"), full_page=True)


@pytest.mark.browser
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
