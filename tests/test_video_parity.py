"""Video classification (VideoTask): preprocessing and logits against transformers, ONNX against PyTorch, windows
over long videos, the actions the user types (X-CLIP), and bad files and windows as sentences."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from studio.errors import BadLabelsError
from studio.media.video import BadVideoError, clips_of, open_video
from tests.fixtures.video import VIDEO_CLASSIFIERS, bad_video_files
from tests.helpers import assert_plain_sentence


@pytest.fixture(scope="module")
def model_dirs(tiny_videomae_dir, tiny_timesformer_dir) -> dict[str, Path]:
    return {"videomae": tiny_videomae_dir, "timesformer": tiny_timesformer_dir}


# Against transformers ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", VIDEO_CLASSIFIERS)
def test_preprocessing_and_logits_match_transformers(name, model_dirs, video_tasks, clips):
    import torch
    from transformers import AutoImageProcessor

    from studio.families.video_classifier import load_model

    (clip,) = list(clips_of(open_video(clips["short"]), 4, window_s=2.0, stride_s=2.0))[:1]
    reference = AutoImageProcessor.from_pretrained(str(model_dirs[name]))
    expected = reference(list(clip.frames), return_tensors="np")["pixel_values"]
    ours = video_tasks[(name, "onnx")].preprocess(clip.frames)
    assert ours.shape == expected.shape == (1, 4, 3, 32, 32)
    np.testing.assert_allclose(ours, expected, atol=1e-5)

    model = load_model(model_dirs[name])
    with torch.no_grad():
        logits = model(pixel_values=torch.from_numpy(expected)).logits.numpy()
    for backend in ("onnx", "torch"):
        np.testing.assert_allclose(video_tasks[(name, backend)].forward(ours), logits, atol=1e-4)
    top = video_tasks[(name, "onnx")].classify_clip(clip).top
    probs = torch.softmax(torch.from_numpy(logits[0]), -1).numpy()
    assert [t["label"] for t in top] == [model.config.id2label[int(i)] for i in np.argsort(-probs)[:5]]
    np.testing.assert_allclose([t["score"] for t in top], np.sort(probs)[::-1][:5], atol=1e-5)


@pytest.mark.parametrize("name", VIDEO_CLASSIFIERS)
def test_the_export_records_its_parity_with_pytorch(name, model_dirs, video_exports_dir):
    from studio.export.exporter import export_dir
    from studio.export.manifest import read_manifest
    from studio.sources import resolve

    manifest = read_manifest(export_dir(video_exports_dir, resolve(str(model_dirs[name]), "video", video_exports_dir)))
    assert manifest["family"] == "video_classifier"
    assert manifest["graphs"]["classifier"]["max_abs_diff"] < 1e-4
    assert manifest["metadata"]["num_frames"] == 4


@pytest.mark.parametrize("name", VIDEO_CLASSIFIERS)
def test_the_graph_takes_any_batch(name, video_tasks):
    rng = np.random.default_rng(0)
    batch = rng.standard_normal((3, 4, 3, 32, 32), dtype=np.float32)
    for backend in ("onnx", "torch"):
        task = video_tasks[(name, backend)]
        together = task.forward(batch)
        one_by_one = np.concatenate([task.forward(batch[i : i + 1]) for i in range(3)])
        assert together.shape == (3, 7)
        np.testing.assert_allclose(together, one_by_one, atol=1e-5)


# Windows over long videos -----------------------------------------------------------------------------------------


def test_long_video_timeline_and_overall(video_tasks, clips):
    task = video_tasks[("videomae", "onnx")]
    fractions = []
    result = task.classify_video(clips["long"], 2.0, 1.0, progress=lambda f, m: fractions.append(f))
    assert [w.start_s for w in result.windows] == [float(s) for s in range(11)]  # 12 s: 2 s windows every 1 s
    assert fractions == sorted(fractions) and len(fractions) >= 11
    mean = np.mean([w.probabilities for w in result.windows], axis=0)
    assert result.overall[0]["score"] == pytest.approx(float(mean.max()))
    assert result.as_dict()["windows"][3]["top"][0]["label"] in task.labels


def test_cancel_returns_the_windows_done(video_tasks, clips):
    seen = []

    def cancelled():
        seen.append(1)
        return len(seen) > 30  # about 6 s into the 12 s video

    result = video_tasks[("videomae", "onnx")].classify_video(clips["long"], 2.0, 2.0, cancelled=cancelled)
    assert result.cancelled and 1 <= len(result.windows) < 6


def test_a_long_video_is_windowed_with_progress_in_bounded_memory(video_tasks, five_minute_clip):
    import tracemalloc

    fractions = []
    tracemalloc.start()
    try:
        result = video_tasks[("videomae", "onnx")].classify_video(
            five_minute_clip, 4.0, 4.0, progress=lambda f, m: fractions.append(f)
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(result.windows) == 75 and result.windows[-1].end_s == pytest.approx(300.0)
    assert fractions == sorted(fractions) and fractions[-1] >= 0.98 and len(fractions) == 76
    # All 3000 decoded frames would take 27 MB; a window holds 4 of them.
    assert peak < 6 * 1024**2, f"peak {peak / 1024**2:.1f} MB"


def test_a_cut_off_file_is_classified_as_far_as_it_goes_and_says_so(video_tasks, clips, tmp_path):
    data = Path(clips["long"]).read_bytes()
    cut = tmp_path / "cut-off.avi"
    cut.write_bytes(data[: len(data) // 2])
    result = video_tasks[("videomae", "onnx")].classify_video(cut, 2.0, 2.0)
    assert 0 < len(result.windows) < 6
    (notice,) = result.notices
    assert_plain_sentence(notice, "only the first", "0:12.0", "cut off")


# X-CLIP: the actions the user types -------------------------------------------------------------------------------


ACTIONS_TYPED = ["waving a hand", "juggling balls", "typing on a keyboard", "drinking coffee"]


def test_xclip_scores_typed_actions_like_transformers(xclip_tasks, tiny_xclip_dir, video_exports_dir, clips):
    import torch
    from transformers import AutoImageProcessor, AutoTokenizer, XCLIPModel

    from studio.export.exporter import export_dir
    from studio.export.manifest import read_manifest
    from studio.sources import resolve

    manifest = read_manifest(export_dir(video_exports_dir, resolve(str(tiny_xclip_dir), "video", video_exports_dir)))
    assert set(manifest["graphs"]) == {"video_encoder", "text_encoder", "scorer"}
    assert all(g["max_abs_diff"] < 1e-4 for g in manifest["graphs"].values())

    (clip,) = list(clips_of(open_video(clips["short"]), 4, window_s=2.0, stride_s=2.0))[:1]
    pixels = AutoImageProcessor.from_pretrained(str(tiny_xclip_dir))(list(clip.frames), return_tensors="np")
    text = AutoTokenizer.from_pretrained(str(tiny_xclip_dir))(ACTIONS_TYPED, padding=True, return_tensors="pt")
    model = XCLIPModel.from_pretrained(str(tiny_xclip_dir)).eval()
    with torch.no_grad():
        expected = model(pixel_values=torch.from_numpy(pixels["pixel_values"]), **text).logits_per_video.numpy()
    for backend, task in xclip_tasks.items():
        ours = task.preprocess(clip.frames)
        np.testing.assert_allclose(ours, pixels["pixel_values"], atol=1e-5)
        np.testing.assert_allclose(task.forward(ours, ACTIONS_TYPED), expected, atol=1e-4, err_msg=backend)
    top = xclip_tasks["onnx"].classify_clip(clip, labels=", ".join(ACTIONS_TYPED)).top
    probs = torch.softmax(torch.from_numpy(expected[0]), -1).numpy()
    assert [t["label"] for t in top] == [ACTIONS_TYPED[i] for i in np.argsort(-probs)]
    np.testing.assert_allclose([t["score"] for t in top], np.sort(probs)[::-1], atol=1e-5)


def test_xclip_encodes_a_label_set_once_and_windows_a_video(xclip_tasks, clips):
    task = xclip_tasks["onnx"]
    result = task.classify_video(clips["long"], 4.0, 4.0, labels="waving a hand, juggling balls, waving a hand")
    assert result.labels == ["waving a hand", "juggling balls"] and len(result.windows) == 3
    assert any("more than once" in n for n in result.notices)
    cached = task.text_embeds(["waving a hand", "juggling balls"])
    assert task.text_embeds(["waving a hand", "juggling balls"]) is cached
    assert {t["label"] for t in result.overall} == set(result.labels)


@pytest.mark.parametrize("labels", [None, "", " , ", "waving"])
def test_xclip_without_two_actions_gets_a_sentence(xclip_tasks, clips, labels):
    with pytest.raises(BadLabelsError) as caught:
        xclip_tasks["onnx"].classify_video(clips["short"], labels=labels)
    assert_plain_sentence(str(caught.value), "at least")


def test_a_classifier_says_typed_actions_are_not_used(video_tasks, clips):
    result = video_tasks[("videomae", "onnx")].classify_video(clips["short"], labels="waving, clapping")
    assert len(result.labels) == 7
    (notice,) = result.notices
    assert_plain_sentence(notice, "only by X-CLIP")


# Bad input --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "case", ["empty", "corrupt", "text-file", "sound-only", "unknown-codec", "one-frame", "missing"]
)
def test_bad_videos_get_a_sentence(case, video_tasks, clips, tmp_path):
    path, words = bad_video_files(tmp_path, clips)[case]
    with pytest.raises(BadVideoError) as caught:
        video_tasks[("videomae", "onnx")].classify_video(path)
    assert_plain_sentence(str(caught.value), *words)


@pytest.mark.parametrize("window,stride", [(0, 1), (1, -1), (1000, 1)])
def test_bad_windows_get_a_sentence(window, stride, video_tasks, clips):
    with pytest.raises(BadVideoError) as caught:
        video_tasks[("videomae", "onnx")].classify_video(clips["short"], window or 0.01, stride)
    assert_plain_sentence(str(caught.value), "seconds")
