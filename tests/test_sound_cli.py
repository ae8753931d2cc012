"""`studio predict av-events`, `studio listen` and `studio export av-events`, run as a user runs them: a separate
process, JSON on stdout, one sentence on stderr and exit status 2 for what a user can get wrong.

What the commands print is compared with the tasks run directly in this process on the same models and files (those
are compared with transformers in test_sound_events.py and test_sound_fusion.py).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.helpers import assert_plain_sentence, error_sentence, read_verified_export, stdout_json, studio

LABELS = "dog barking, door knock, applause"


@pytest.fixture(scope="module")
def cli_models_dir(tmp_path_factory, sound_exports_dir) -> Path:
    """A copy of the sound exports for commands that might write."""
    return shutil.copytree(sound_exports_dir, tmp_path_factory.mktemp("sound-cli") / "exported")


@pytest.fixture(scope="module")
def photo(tmp_path_factory, photos) -> Path:
    path = tmp_path_factory.mktemp("sound-cli-photo") / "chelsea.jpg"
    photos["chelsea"].save(path)
    return path


def predict(env, models_dir, *args):
    return studio(env, "predict", "av-events", "--models-dir", models_dir, "--device", "cpu", *args)


def test_predict_sound_and_picture(cli_env, cli_models_dir, tiny_clap_dir, tiny_clip_dir, sounds, photo):
    from studio.tasks.av_events import AvEvents
    from studio.tasks.sound_events import SoundEventsTask
    from studio.tasks.zero_shot import ZeroShotTask

    args = ["--audio", sounds["long"], "--image", photo, "--labels", LABELS, "--audio-weight", "0.7"]
    args += ["--model", tiny_clap_dir, "--image-model", tiny_clip_dir]
    out = stdout_json(predict(cli_env, cli_models_dir, *args))
    sound = SoundEventsTask.load(str(tiny_clap_dir), cli_models_dir, device="cpu")
    picture = ZeroShotTask.load(str(tiny_clip_dir), cli_models_dir, device="cpu")
    expected = AvEvents(sound, picture)(audio=sounds["long"], image=photo, labels=LABELS, audio_weight=0.7).as_dict()
    assert out["task"] == "av-events" and out["fusion"] == "late" and out["audio_weight"] == 0.7
    assert out["labels_in_play"] == expected["labels_in_play"] == ["dog barking", "door knock", "applause"]
    for key in ("fused", "audio", "picture"):
        assert [r["label"] for r in out[key]] == [r["label"] for r in expected[key]], key
        assert [r["score"] for r in out[key]] == pytest.approx([r["score"] for r in expected[key]], abs=1e-5)
    assert len(out["sound"]["events"]) == len(expected["sound"]["events"]) >= 8
    assert [e["start_s"] for e in out["sound"]["events"]] == [e["start_s"] for e in expected["sound"]["events"]]
    assert out["runtime"]["sound"]["engine"] == "ONNX Runtime"  # the export in the models directory
    assert out["runtime"]["picture"]["engine"] == "PyTorch"  # no CLIP export there
    assert out["sound_model"] == str(tiny_clap_dir)


@pytest.mark.slow  # AvEvents on a silent film is tested by default in test_sound_fusion.py; this is the CLI's wiring
def test_predict_video_without_sound_track_uses_its_pictures(
    cli_env, cli_models_dir, tiny_ast_dir, tiny_clip_dir, sounds
):
    args = ["--video", sounds["video_no_sound"], "--labels", LABELS, "--model", tiny_ast_dir]
    proc = predict(cli_env, cli_models_dir, *args, "--image-model", tiny_clip_dir)
    out = stdout_json(proc)
    assert out["fusion"] == "picture only" and out["audio"] is None and out["picture_frames"] == 8
    assert "studio: The video has no sound track, so only its pictures were used." in proc.stderr
    assert out["sound_model"] is None  # no sound model was even loaded


@pytest.mark.parametrize(
    ("case", "words"),
    [
        ("nothing", ("sound", "picture")),
        ("silence", ("silent",)),
        ("corrupt", ("broken.mp3", "damaged")),
        ("missing", ("does not exist",)),
        ("early", ("needs a trained fusion head", "late fusion")),
        ("weight", ("between 0 and 1",)),
    ],
)
def test_predict_mistakes_get_a_sentence(cli_env, cli_models_dir, tiny_ast_dir, sounds, tmp_path, case, words):
    args = {
        "nothing": [],
        "silence": ["--audio", sounds["silence"]],
        "corrupt": ["--audio", sounds["corrupt"]],
        "missing": ["--audio", tmp_path / "nowhere.wav"],
        "early": ["--audio", sounds["speech"], "--fusion", "early"],
        "weight": ["--audio", sounds["speech"], "--audio-weight", "1.5"],
    }[case]
    proc = predict(cli_env, cli_models_dir, *args, "--model", tiny_ast_dir)
    assert_plain_sentence(error_sentence(proc), *words)


def test_listen_without_a_microphone_says_so(cli_env, cli_models_dir):
    from studio.media.microphone import MicrophoneUnavailableError, input_device

    try:
        input_device()
        pytest.skip("this machine has a microphone")
    except MicrophoneUnavailableError:
        pass
    proc = studio(cli_env, "listen", "--models-dir", cli_models_dir, timeout=60)
    assert_plain_sentence(error_sentence(proc), "no microphone", "browser")


def test_listen_to_a_file_prints_events_as_they_happen(cli_env, cli_models_dir, tiny_ast_dir, sounds):
    """`studio listen --file` runs the microphone loop on a file's chunks: one JSON line per step, as the rolling
    listener run directly says."""
    from studio.tasks.sound_events import RollingListener, SoundEventsTask, file_chunks, listen

    args = ["listen", "--models-dir", cli_models_dir, "--model", tiny_ast_dir, "--device", "cpu"]
    proc = studio(cli_env, *args, "--file", sounds["long"], "--window", "1", "--every", "0.5")
    assert proc.returncode == 0, proc.stderr
    assert "listening to the file long.wav (ONNX Runtime · CPU)" in proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    task = SoundEventsTask.load(str(tiny_ast_dir), cli_models_dir, device="cpu")
    expected = list(listen(file_chunks(sounds["long"]), RollingListener(task, None, window_s=1, every_s=0.5)))
    assert len(lines) == len(expected) > 10
    for got, want in zip(lines, expected):
        assert (got["start_s"], got["end_s"]) == (want["start_s"], want["end_s"])
        assert [x["label"] for x in got["labels"]] == [x["label"] for x in want["labels"]]


def test_export_av_events_model(cli_env, tiny_ast_dir, tmp_path):
    out_dir = tmp_path / "exported"
    proc = studio(cli_env, "export", "av-events", "--model", tiny_ast_dir, "--out", out_dir)
    directory, manifest = read_verified_export(
        stdout_json(proc), out_dir, "av-events", "ast", tiny_ast_dir, {"audio_classifier"}
    )
    assert manifest["metadata"]["kind"] == "tagging" and len(manifest["metadata"]["labels"]) == 12
    assert "synthesized sounds" in manifest["parity_inputs"]
