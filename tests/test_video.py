"""Video classification: decoding and timestamps, clip sampling, preprocessing and logits against transformers, ONNX
against PyTorch, windows over long videos, bad files, and the `studio predict video` command."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from studio.errors import BadLabelsError
from studio.media.video import (
    MAX_SHORT_SIDE,
    BadVideoError,
    ClipSampler,
    DecodeReport,
    clips_of,
    iter_frames,
    open_video,
    sampling_times,
)
from studio.tasks.video import VideoTask
from tests.helpers import assert_plain_sentence, error_sentence, stdout_json, studio
from tests.inputs import drawn_frames, write_clip

MODELS = ("videomae", "timesformer")


@pytest.fixture(scope="module")
def model_dirs(tiny_videomae_dir, tiny_timesformer_dir) -> dict[str, Path]:
    return {"videomae": tiny_videomae_dir, "timesformer": tiny_timesformer_dir}


@pytest.fixture(scope="module")
def tasks(model_dirs, video_exports_dir) -> dict[tuple[str, str], VideoTask]:
    return {
        (name, backend): VideoTask.load(str(path), video_exports_dir, backend=backend)
        for name, path in model_dirs.items()
        for backend in ("onnx", "torch")
    }


@pytest.fixture(scope="module")
def vfr_clip(tmp_path_factory) -> Path:
    """3 s made by ffmpeg at 5 frames/s for the first second and 20 frames/s after (variable frame rate)."""
    out = tmp_path_factory.mktemp("vfr") / "vfr.mp4"
    subprocess.run(
        [
            "ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc=size=96x72:rate=20:duration=3",
            "-vf", "select='if(lt(t,1),not(mod(n,4)),1)'", "-fps_mode", "vfr", str(out),
        ],
        check=True,
    )  # fmt: skip
    return out


def _ffprobe_times(path: Path) -> list[float]:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "frame=pts_time", "-of", "json", path],
        capture_output=True,
        text=True,
        check=True,
    )
    return [float(f["pts_time"]) for f in json.loads(out.stdout)["frames"]]


# Decoding -----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("reader", ["opencv", "ffmpeg"])
def test_timestamps_come_from_the_container(vfr_clip, reader):
    times = [t for t, _ in iter_frames(open_video(vfr_clip, reader=reader))]
    expected = _ffprobe_times(vfr_clip)
    assert len(times) == len(expected) == 45  # 5 frames in the first second, 40 in the next two
    np.testing.assert_allclose(times, np.asarray(expected) - expected[0], atol=2e-3)
    assert times[1] - times[0] == pytest.approx(0.2, abs=2e-3)
    assert times[-1] - times[-2] == pytest.approx(0.05, abs=2e-3)


def test_both_readers_decode_the_same_frames(clips):
    a = list(iter_frames(open_video(clips["short"], reader="opencv")))
    b = list(iter_frames(open_video(clips["short"], reader="ffmpeg")))
    assert len(a) == len(b) == 35
    for (ta, fa), (tb, fb) in zip(a, b):
        assert ta == pytest.approx(tb, abs=1e-3)
        assert fa.shape == fb.shape == (72, 96, 3)
        assert np.abs(fa.astype(int) - fb.astype(int)).mean() < 3  # two builds of FFmpeg's MPEG-4 decoder
    # RGB, not BGR: the drawn square's colour survives the round trip.
    drawn = drawn_frames(35)
    assert np.abs(a[3][1][2:18, 23:39].astype(int) - drawn[3][2:18, 23:39].astype(int)).mean() < 12


@pytest.fixture(scope="module")
def clip_4k(tmp_path_factory) -> Path:
    frames = [np.full((2160, 3840, 3), 40 * i, np.uint8) for i in range(3)]
    return write_clip(tmp_path_factory.mktemp("4k") / "4k.mp4", frames, fps=10)


@pytest.mark.parametrize("reader", ["opencv", "ffmpeg"])
def test_a_4k_video_is_shrunk_while_decoding(clip_4k, reader):
    info = open_video(clip_4k, reader=reader)
    assert (info.width, info.height) == (3840, 2160)
    decoded = list(iter_frames(info))
    ((height, width, _),) = {frame.shape for _, frame in decoded}
    assert height == MAX_SHORT_SIDE and abs(width - MAX_SHORT_SIDE * 16 / 9) < 1  # ffmpeg's scaler: even sizes
    assert [t for t, _ in decoded] == pytest.approx([0.0, 0.1, 0.2], abs=1e-3)
    assert [int(frame.mean()) for _, frame in decoded] == pytest.approx([0, 40, 80], abs=3)


@pytest.mark.parametrize(
    "name,fourcc",
    [("clip.mp4", "mp4v"), ("clip.avi", "MJPG"), ("clip.webm", "VP80"), ("clip.mov", "mp4v"), ("clip.mkv", "XVID")],
)
def test_every_offered_container_decodes_with_its_timestamps(name, fourcc, tmp_path):
    path = write_clip(tmp_path / name, drawn_frames(20, width=64, height=48), fps=8, fourcc=fourcc)
    info = open_video(path)
    assert info.reader == "opencv" and (info.width, info.height) == (64, 48)
    times = [t for t, _ in iter_frames(info)]
    assert len(times) == 20
    np.testing.assert_allclose(times, np.arange(20) / 8, atol=2e-3)


# Clip sampling ------------------------------------------------------------------------------------------------------


def test_windows_sample_evenly_in_real_time(vfr_clip):
    clips = list(clips_of(open_video(vfr_clip), 4, window_s=1.0, stride_s=1.0))
    assert [(c.start_s, c.end_s) for c in clips] == [(0.0, 1.0), (1.0, 2.0), (2.0, 3.0)]  # the last ends with it
    for clip in clips:
        targets = sampling_times(clip.start_s, clip.end_s, 4)
        # 5 frames/s in the first window (nearest frames up to 0.1 s away), 20 frames/s in the second.
        tolerance = 0.1 if clip.start_s == 0 else 0.025
        assert np.abs(np.asarray(clip.times) - targets).max() <= tolerance + 1e-6


def test_overlapping_windows_hold_bounded_memory():
    sampler = ClipSampler(frames_per_clip=8, window_s=2.0, stride_s=0.5)
    frame = np.zeros((4, 4, 3), np.uint8)
    done, most_open = [], 0
    for i in range(30 * 60):  # a minute at 30 frames/s
        done += sampler.push(i / 30, frame)
        most_open = max(most_open, len(sampler.open))
    assert most_open <= 4  # ceil(window / stride)
    assert [c.start_s for c in done[:3]] == [0.0, 0.5, 1.0] and len(done) == 116
    assert all(len(c.frames) == 8 for c in done)


def test_a_video_shorter_than_one_window_gives_one_clip_over_all_of_it(clips):
    (clip,) = clips_of(open_video(clips["short"]), 4, window_s=10.0, stride_s=10.0)
    assert clip.end_s == pytest.approx(3.4)
    # Sampled from a thinned copy (at most 4 frames per sampling time are kept until the video proves longer than
    # a window): each chosen frame lies within half a sampling interval of its time, in order.
    targets = sampling_times(0.0, 3.4, 4)
    assert np.abs(np.asarray(clip.times) - targets).max() <= 3.4 / 4 / 2
    assert clip.times == sorted(set(clip.times))


# Against transformers ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", MODELS)
def test_preprocessing_and_logits_match_transformers(name, model_dirs, tasks, clips):
    import torch
    from transformers import AutoImageProcessor

    from studio.families.video_classifier import load_model

    (clip,) = list(clips_of(open_video(clips["short"]), 4, window_s=2.0, stride_s=2.0))[:1]
    reference = AutoImageProcessor.from_pretrained(str(model_dirs[name]))
    expected = reference(list(clip.frames), return_tensors="np")["pixel_values"]
    ours = tasks[(name, "onnx")].preprocess(clip.frames)
    assert ours.shape == expected.shape == (1, 4, 3, 32, 32)
    np.testing.assert_allclose(ours, expected, atol=1e-5)

    model = load_model(model_dirs[name])
    with torch.no_grad():
        logits = model(pixel_values=torch.from_numpy(expected)).logits.numpy()
    for backend in ("onnx", "torch"):
        np.testing.assert_allclose(tasks[(name, backend)].forward(ours), logits, atol=1e-4)
    top = tasks[(name, "onnx")].classify_clip(clip).top
    probs = torch.softmax(torch.from_numpy(logits[0]), -1).numpy()
    assert [t["label"] for t in top] == [model.config.id2label[int(i)] for i in np.argsort(-probs)[:5]]
    np.testing.assert_allclose([t["score"] for t in top], np.sort(probs)[::-1][:5], atol=1e-5)


@pytest.mark.parametrize("name", MODELS)
def test_the_export_records_its_parity_with_pytorch(name, model_dirs, video_exports_dir):
    from studio.export.exporter import export_dir
    from studio.export.manifest import read_manifest
    from studio.sources import resolve

    manifest = read_manifest(export_dir(video_exports_dir, resolve(str(model_dirs[name]), "video", video_exports_dir)))
    assert manifest["family"] == "video_classifier"
    assert manifest["graphs"]["classifier"]["max_abs_diff"] < 1e-4
    assert manifest["metadata"]["num_frames"] == 4


@pytest.mark.parametrize("name", MODELS)
def test_the_graph_takes_any_batch(name, tasks):
    rng = np.random.default_rng(0)
    batch = rng.standard_normal((3, 4, 3, 32, 32), dtype=np.float32)
    for backend in ("onnx", "torch"):
        task = tasks[(name, backend)]
        together = task.forward(batch)
        one_by_one = np.concatenate([task.forward(batch[i : i + 1]) for i in range(3)])
        assert together.shape == (3, 7)
        np.testing.assert_allclose(together, one_by_one, atol=1e-5)


def test_long_video_timeline_and_overall(tasks, clips):
    task = tasks[("videomae", "onnx")]
    fractions = []
    result = task.classify_video(clips["long"], 2.0, 1.0, progress=lambda f, m: fractions.append(f))
    assert [w.start_s for w in result.windows] == [float(s) for s in range(11)]  # 12 s: 2 s windows every 1 s
    assert fractions == sorted(fractions) and len(fractions) >= 11
    mean = np.mean([w.probabilities for w in result.windows], axis=0)
    assert result.overall[0]["score"] == pytest.approx(float(mean.max()))
    assert result.as_dict()["windows"][3]["top"][0]["label"] in task.labels


def test_cancel_returns_the_windows_done(tasks, clips):
    seen = []

    def cancelled():
        seen.append(1)
        return len(seen) > 30  # about 6 s into the 12 s video

    result = tasks[("videomae", "onnx")].classify_video(clips["long"], 2.0, 2.0, cancelled=cancelled)
    assert result.cancelled and 1 <= len(result.windows) < 6


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory) -> Path:
    """Five minutes at 10 frames/s, 64x48 (3000 frames): long enough to show that nothing grows with the length."""
    out = tmp_path_factory.mktemp("long") / "five-minutes.mp4"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc=size=64x48:rate=10:duration=300",
         "-c:v", "mpeg4", "-q:v", "10", str(out)],
        check=True,
    )  # fmt: skip
    return out


def _ffmpeg_children() -> list[int]:
    import os

    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            name, rest = stat[stat.index("(") + 1 : stat.rindex(")")], stat[stat.rindex(")") + 2 :].split()
            if name == "ffmpeg" and int(rest[1]) == os.getpid():
                pids.append(int(entry))
    return pids


def test_a_long_video_is_windowed_with_progress_in_bounded_memory(tasks, long_clip):
    import tracemalloc

    fractions = []
    tracemalloc.start()
    try:
        result = tasks[("videomae", "onnx")].classify_video(
            long_clip, 4.0, 4.0, progress=lambda f, m: fractions.append(f)
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(result.windows) == 75 and result.windows[-1].end_s == pytest.approx(300.0)
    assert fractions == sorted(fractions) and fractions[-1] >= 0.98 and len(fractions) == 76
    # All 3000 decoded frames would take 27 MB; a window holds 4 of them.
    assert peak < 6 * 1024**2, f"peak {peak / 1024**2:.1f} MB"


@pytest.mark.parametrize("reader", ["opencv", "ffmpeg"])
def test_stopping_a_long_video_stops_decoding_at_once(long_clip, reader):
    polls = []

    def cancelled():
        polls.append(1)
        return len(polls) > 200  # 20 s into the 5 minutes

    info = open_video(long_clip, reader=reader)
    clips = list(clips_of(info, 4, window_s=4.0, stride_s=4.0, cancelled=cancelled))
    assert len(clips) == 5 and len(polls) <= 202  # no frame decoded past the stop
    assert _ffmpeg_children() == []  # the ffmpeg decoder was ended with the stop


def test_a_damaged_file_is_read_past_the_damage(clips, tmp_path):
    data = bytearray(Path(clips["short"]).read_bytes())
    middle = len(data) // 3
    data[middle : middle + 3000] = b"\x55" * 3000  # a few frames' worth of garbage in the middle
    damaged = tmp_path / "damaged.mp4"
    damaged.write_bytes(bytes(data))
    report = DecodeReport()
    times = [t for t, _ in iter_frames(open_video(damaged), report=report)]
    expected = _ffprobe_times(damaged)  # the frames FFmpeg's decoder gets out of it
    assert len(expected) < 35
    np.testing.assert_allclose(times, expected, atol=2e-3)  # OpenCV gave up at the damage; ffmpeg read on
    assert times[-1] == pytest.approx(3.4, abs=1e-3)
    assert len(report.notices) == 1 and "could not be read and were skipped" in report.notices[0]
    assert_plain_sentence(report.notices[0], "damaged")


def test_a_cut_off_file_is_classified_as_far_as_it_goes_and_says_so(tasks, clips, tmp_path):
    data = Path(clips["long"]).read_bytes()
    cut = tmp_path / "cut-off.avi"
    cut.write_bytes(data[: len(data) // 2])
    result = tasks[("videomae", "onnx")].classify_video(cut, 2.0, 2.0)
    assert 0 < len(result.windows) < 6
    (notice,) = result.notices
    assert_plain_sentence(notice, "only the first", "0:12.0", "cut off")


# X-CLIP: the actions the user types ------------------------------------------------------------------------------

ACTIONS_TYPED = ["waving a hand", "juggling balls", "typing on a keyboard", "drinking coffee"]


@pytest.fixture(scope="module")
def xclip_tasks(tiny_xclip_dir, video_exports_dir) -> dict[str, VideoTask]:
    return {b: VideoTask.load(str(tiny_xclip_dir), video_exports_dir, backend=b) for b in ("onnx", "torch")}


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


def test_a_classifier_says_typed_actions_are_not_used(tasks, clips):
    result = tasks[("videomae", "onnx")].classify_video(clips["short"], labels="waving, clapping")
    assert len(result.labels) == 7
    (notice,) = result.notices
    assert_plain_sentence(notice, "only by X-CLIP")


def test_cli_predict_video_with_typed_actions(cli_env, xclip_tasks, tiny_xclip_dir, video_exports_dir, clips):
    args = ["predict", "video", "--video", clips["long"], "--model", tiny_xclip_dir, "--models-dir", video_exports_dir]
    out = stdout_json(studio(cli_env, *args, "--labels", "waving a hand, juggling balls", "--window-seconds", "6"))
    expected = xclip_tasks["onnx"].classify_video(clips["long"], 6.0, labels="waving a hand, juggling balls")
    assert [t["label"] for t in out["overall"]] == [t["label"] for t in expected.overall]
    np.testing.assert_allclose([t["score"] for t in out["overall"]], [t["score"] for t in expected.overall], atol=1e-6)
    assert len(out["windows"]) == 2
    proc = studio(cli_env, *args)
    assert_plain_sentence(error_sentence(proc), "type at least two")


# Bad input --------------------------------------------------------------------------------------------------------


def _bad_files(directory: Path, clips) -> dict[str, tuple[Path, tuple[str, ...]]]:
    empty = directory / "empty.mp4"
    empty.write_bytes(b"")
    corrupt = directory / "corrupt.mp4"
    corrupt.write_bytes(np.random.default_rng(0).integers(0, 256, 20_000, dtype=np.uint8).tobytes())
    text = directory / "notes.mov"
    text.write_text("this is not a video\n" * 50)
    sound = directory / "sound-only.mp4"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "sine=frequency=440:duration=1", str(sound)], check=True
    )
    # An AVI whose picture track names a codec no decoder knows (the MJPG tag replaced by a made-up one).
    unknown = directory / "unknown-codec.avi"
    unknown.write_bytes(
        write_clip(directory / "mjpg.avi", drawn_frames(5), fourcc="MJPG").read_bytes().replace(b"MJPG", b"QZX9")
    )
    return {
        "unknown-codec": (unknown, ("cannot decode", "QZX9")),
        "empty": (empty, ("empty",)),
        "corrupt": (corrupt, ("cannot be read",)),
        "text-file": (text, ("cannot be read",)),
        "sound-only": (sound, ("no picture",)),
        "one-frame": (clips["one-frame"], ("one picture",)),
        "missing": (directory / "nowhere.mp4", ("not found",)),
    }


@pytest.mark.parametrize(
    "case", ["empty", "corrupt", "text-file", "sound-only", "unknown-codec", "one-frame", "missing"]
)
def test_bad_videos_get_a_sentence(case, tasks, clips, tmp_path):
    path, words = _bad_files(tmp_path, clips)[case]
    with pytest.raises(BadVideoError) as caught:
        tasks[("videomae", "onnx")].classify_video(path)
    assert_plain_sentence(str(caught.value), *words)


@pytest.mark.parametrize("window,stride", [(0, 1), (1, -1), (1000, 1)])
def test_bad_windows_get_a_sentence(window, stride, tasks, clips):
    with pytest.raises(BadVideoError) as caught:
        tasks[("videomae", "onnx")].classify_video(clips["short"], window or 0.01, stride)
    assert_plain_sentence(str(caught.value), "seconds")


# The command ----------------------------------------------------------------------------------------------------------


def test_cli_predict_video_equals_task(cli_env, tasks, tiny_timesformer_dir, video_exports_dir, clips):
    out = stdout_json(
        studio(
            cli_env, "predict", "video", "--video", clips["long"], "--model", tiny_timesformer_dir,
            "--models-dir", video_exports_dir, "--window-seconds", "4", "--stride-seconds", "2", "--device", "cpu",
        )
    )  # fmt: skip
    expected = tasks[("timesformer", "onnx")].classify_video(clips["long"], 4.0, 2.0)
    assert out["backend"] == "onnx" and out["provider"] == "CPUExecutionProvider"
    assert [w["start_s"] for w in out["windows"]] == [0, 2, 4, 6, 8] and out["notices"] == []
    assert [t["label"] for t in out["overall"]] == [t["label"] for t in expected.overall]
    np.testing.assert_allclose([t["score"] for t in out["overall"]], [t["score"] for t in expected.overall], atol=1e-6)


@pytest.mark.parametrize("case", ["corrupt", "unknown-codec"])
def test_cli_bad_video_exits_2_with_a_sentence(case, cli_env, clips, tmp_path):
    path, words = _bad_files(tmp_path, clips)[case]
    proc = studio(cli_env, "predict", "video", "--video", path)
    assert proc.returncode == 2
    sentence = error_sentence(proc)
    assert_plain_sentence(sentence, *words)
    assert proc.stderr.strip() == f"studio: {sentence}"  # OpenCV's and FFmpeg's own log lines stay quiet


def test_cli_export_video_writes_a_checked_export(cli_env, tiny_timesformer_dir, tmp_path):
    out_dir = tmp_path / "models"
    printed = stdout_json(studio(cli_env, "export", "video", "--model", tiny_timesformer_dir, "--out", out_dir))
    manifest = printed["manifest"]
    assert manifest["task"] == "video" and manifest["family"] == "video_classifier"
    assert manifest["graphs"]["classifier"]["max_abs_diff"] < 1e-4
    assert manifest["metadata"]["num_frames"] == 4 and manifest["metadata"]["model_type"] == "timesformer"
    assert Path(printed["export_dir"]).parent == out_dir / "video"
    assert (Path(printed["export_dir"]) / "classifier.onnx").is_file()
    assert (Path(printed["export_dir"]) / "preprocessor_config.json").is_file()


def test_the_camera_buffer_keeps_the_last_seconds_only():
    from studio.live import RollingClip

    buffer = RollingClip(seconds=3.0, max_frames=50)
    for i in range(600):  # 20 s at 30 frames/s
        buffer.add(i / 30, i)
    assert len(buffer.buffer) == 50 and buffer.span == pytest.approx(49 / 30)  # capped by max_frames
    buffer = RollingClip(seconds=3.0)
    for i in range(200):  # 20 s at 10 frames/s
        buffer.add(i / 10, i)
    assert buffer.span == pytest.approx(3.0) and buffer.buffer[0][1] == 169
    assert buffer.frames(4) == [173, 180, 188, 195]  # nearest to 17.275, 18.025, 18.775, 19.525 s
    assert buffer.due(20.0, interval=2.0)
    buffer.last_run = 19.0
    assert not buffer.due(20.0, interval=2.0) and buffer.due(21.0, interval=2.0)


def test_the_camera_clip_is_classified_while_frames_keep_coming():
    import threading
    import time

    from studio.live import RollingClip

    buffer = RollingClip(seconds=2.0)
    release = threading.Event()

    def slow_model(timed):
        release.wait(5)
        return [t for t, _ in timed]

    for i in range(11):  # 1 s at 10 frames/s
        buffer.add(i / 10, i)
    assert not buffer.due(1.0, interval=1.5)  # the first look waits for 1.5 s of camera
    for i in range(11, 16):
        buffer.add(i / 10, i)
    assert buffer.due(1.5, interval=1.5)
    buffer.start(1.5, slow_model)
    for i in range(16, 46):  # frames keep being buffered while the model runs; nothing more is started
        buffer.add(i / 10, i)
        assert not buffer.due(i / 10, interval=1.5) and buffer.take() is None
    release.set()
    deadline = time.monotonic() + 5
    while (finished := buffer.take()) is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert finished.error is None and finished.value == pytest.approx([i / 10 for i in range(16)])
    assert finished.span_s == pytest.approx(1.5) and finished.frames == 16
    assert buffer.take() is None  # each run is handed over once
    assert buffer.span == pytest.approx(2.0) and buffer.due(4.5, interval=1.5)  # no hole where the model ran

    def broken(timed):
        raise BadVideoError("There are no frames to classify yet.")

    buffer.start(4.5, broken)
    while (finished := buffer.take()) is None:
        time.sleep(0.01)
    assert isinstance(finished.error, BadVideoError) and finished.value is None
