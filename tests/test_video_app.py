"""The Video tab of the launched app, driven through its HTTP API with gradio_client.

Results are compared with `VideoTask` on the same tiny random VideoMAE and the same file, which the task tests compare
with transformers (test_video_parity.py); bad input must come back as a plain sentence while the app keeps serving.
"""

from __future__ import annotations

import pytest
from gradio_client import Client, handle_file

from studio.tasks.video import VideoTask
from tests.helpers import assert_plain_sentence, outputs_and_toasts, text_of


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
    )  # PyTorch: the X-CLIP export and its parity are tested in test_video_parity.py
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
    assert not [t for t in toasts if t[0] == sentence], toasts  # said once, in the live region
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
