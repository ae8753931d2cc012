"""Video decoding and clip sampling (studio.media.video): timestamps from the container with either reader, every
offered container, 4K shrunk while decoding, clips sampled evenly in real time with bounded memory, damaged files read
past the damage, and stopping at once.

References are independent of our decoding: ffprobe's frame times and the frames drawn into the clips.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from studio.media.video import (
    MAX_SHORT_SIDE,
    ClipSampler,
    DecodeReport,
    clips_of,
    iter_frames,
    open_video,
    sampling_times,
)
from tests.helpers import assert_plain_sentence
from tests.inputs import drawn_frames, write_clip


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


# Decoding ---------------------------------------------------------------------------------------------------------


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


@pytest.mark.parametrize("reader", ["opencv", "ffmpeg"])
def test_stopping_a_long_video_stops_decoding_at_once(five_minute_clip, reader):
    polls = []

    def cancelled():
        polls.append(1)
        return len(polls) > 200  # 20 s into the 5 minutes

    info = open_video(five_minute_clip, reader=reader)
    clips = list(clips_of(info, 4, window_s=4.0, stride_s=4.0, cancelled=cancelled))
    assert len(clips) == 5 and len(polls) <= 202  # no frame decoded past the stop
    assert _ffmpeg_children() == []  # the ffmpeg decoder was ended with the stop


# Clip sampling ----------------------------------------------------------------------------------------------------


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
