"""One service per capability: plain data out (JSON as is, with the runtime and notices), the same result the
command line prints, loaded models shared between services, and one export path."""

from __future__ import annotations

import io
import json
from contextlib import redirect_stdout
from pathlib import Path

import pytest

from studio.services.base import LoadedModels, Runtime

TIMINGS = ("latency_ms", "text_encoding_ms", "encoder_ms", "decode_ms", "model_ms_per_clip", "decode_ms_total")


def _without_timings(data):
    if isinstance(data, dict):
        return {k: _without_timings(v) for k, v in data.items() if k not in TIMINGS}
    if isinstance(data, list):
        return [_without_timings(v) for v in data]
    return data


def _printed(*argv) -> dict:
    """What `studio ...` prints on stdout, run in this process."""
    from studio.cli import main

    out = io.StringIO()
    with redirect_stdout(out):
        assert main(list(map(str, argv))) == 0
    return json.loads(out.getvalue())


def _plain(result: dict) -> dict:
    """The result survives JSON unchanged (no numpy values, no objects), and says what ran it and what to know."""
    assert json.loads(json.dumps(result)) == result
    assert "notices" in result and "runtime" in result
    return result


@pytest.fixture(scope="module")
def photo(tmp_path_factory, photos) -> Path:
    path = tmp_path_factory.mktemp("service-photo") / "coffee.jpg"
    photos["coffee"].save(path)
    return path


def test_zero_shot_service_is_what_the_command_prints(exported_models_dir, tiny_clip_dir, photo):
    from studio.services.zero_shot import ZeroShotService

    service = ZeroShotService(LoadedModels(exported_models_dir))
    result = _plain(service(photo, "cup, cat, rocket", runtime=Runtime(str(tiny_clip_dir), device="cpu")))
    assert result["runtime"]["engine"] == "ONNX Runtime" and result["backend"] == "onnx"
    assert sorted(r["label"] for r in result["labels"]) == ["cat", "cup", "rocket"]
    printed = _printed(
        "predict", "zero-shot", "--image", photo, "--labels", "cup, cat, rocket", "--model", tiny_clip_dir,
        "--device", "cpu", "--models-dir", exported_models_dir,
    )  # fmt: skip
    assert _without_timings(printed) == _without_timings(result)


def test_caption_service_is_what_the_command_prints(caption_models_dir, tiny_blip_dir, photo):
    from studio.services.caption import CaptionService

    service = CaptionService(LoadedModels(caption_models_dir))
    runtime = Runtime(str(tiny_blip_dir), device="cpu")
    result = _plain(service(photo, verbosity="detailed", runtime=runtime))
    assert result["settings"]["num_beams"] == 3 and result["tokens"] >= 1
    printed = _printed(
        "predict", "caption", "--image", photo, "--verbosity", "detailed", "--model", tiny_blip_dir,
        "--device", "cpu", "--models-dir", caption_models_dir,
    )  # fmt: skip
    assert _without_timings(printed) == _without_timings(result)


def test_live_describe_writes_only_when_the_scene_changed(caption_models_dir, tiny_blip_dir, photo_arrays):
    from studio.services.caption import CaptionService

    service = CaptionService(LoadedModels(caption_models_dir))
    runtime = Runtime(str(tiny_blip_dir), device="cpu")
    first = _plain(service.describe_if_changed(photo_arrays["coffee"], runtime=runtime))
    assert first["changed"] and first["caption"] == service(photo_arrays["coffee"], runtime=runtime)["caption"]
    same = service.describe_if_changed(photo_arrays["coffee"], since=first["scene_embedding"], runtime=runtime)
    assert same["changed"] is False and same["distance"] == pytest.approx(0.0, abs=1e-5)
    other = service.describe_if_changed(
        photo_arrays["astronaut"], since=first["scene_embedding"], change_threshold=0.0, runtime=runtime
    )
    assert other["changed"] and other["distance"] > 0


def test_video_service_is_what_the_command_prints(video_exports_dir, tiny_videomae_dir, clips):
    from studio.services.video import VideoService

    service = VideoService(LoadedModels(video_exports_dir))
    result = _plain(service(clips["short"], window_seconds=1.0, runtime=Runtime(str(tiny_videomae_dir), device="cpu")))
    timeline = result["timeline"]
    assert timeline["labels"] == [t["label"] for t in result["overall"]][: len(timeline["labels"])]
    assert all(len(row) == len(result["windows"]) for row in timeline["scores"])
    printed = _printed(
        "predict", "video", "--video", clips["short"], "--window-seconds", "1", "--model", tiny_videomae_dir,
        "--device", "cpu", "--models-dir", video_exports_dir,
    )  # fmt: skip
    assert _without_timings(printed) == _without_timings(result)


def test_sound_scene_service_is_what_the_command_prints(sound_exports_dir, tiny_ast_dir, tiny_clip_dir, sounds, photo):
    from studio.services.sound_scene import SoundSceneService

    service = SoundSceneService(LoadedModels(sound_exports_dir))
    sound, picture = Runtime(str(tiny_ast_dir), device="cpu"), Runtime(str(tiny_clip_dir), device="cpu")
    result = _plain(service(audio=sounds["knocks"], image=photo, sound=sound, picture=picture))
    timeline = result["sound"]["timeline"]
    assert timeline["labels"] == [s["label"] for s in result["sound"]["summary"]]
    assert all(len(row) == len(result["sound"]["events"]) for row in timeline["scores"])
    printed = _printed(
        "predict", "av-events", "--audio", sounds["knocks"], "--image", photo, "--model", tiny_ast_dir,
        "--image-model", tiny_clip_dir, "--device", "cpu", "--models-dir", sound_exports_dir,
    )  # fmt: skip
    assert _without_timings(printed) == _without_timings(result)


def test_early_fusion_without_a_head_is_refused_or_falls_back_as_asked(sound_exports_dir, tiny_ast_dir, sounds):
    from studio.fusion.heads import FusionHeadError
    from studio.services.sound_scene import SoundSceneService

    service = SoundSceneService(LoadedModels(sound_exports_dir))
    sound = Runtime(str(tiny_ast_dir), device="cpu")
    with pytest.raises(FusionHeadError):
        service(audio=sounds["knocks"], fusion="early", sound=sound)
    result = service(audio=sounds["knocks"], fusion="early", late_if_untrained=True, sound=sound)
    assert result["fusion"] == "audio only" and any("late fusion instead" in n for n in result["notices"])


def test_services_share_the_loaded_models(exported_models_dir, tiny_clip_dir):
    from studio.services.classifiers import ClassifierService
    from studio.services.sound_scene import SoundSceneService
    from studio.services.zero_shot import ZeroShotService

    models = LoadedModels(exported_models_dir)
    runtime = Runtime(str(tiny_clip_dir), device="cpu")
    task = ZeroShotService(models).task(runtime)
    assert SoundSceneService(models).picture_task(runtime) is task
    assert ClassifierService(models).task(runtime) is task
    models.drop(str(tiny_clip_dir))
    assert ZeroShotService(models).task(runtime) is not task


def test_one_export_path_refuses_what_a_model_cannot_do(tiny_blip_dir, tiny_whisper_dir, models_dir):
    from studio.errors import ExportError
    from studio.export.pipeline import export_for_task

    with pytest.raises(ExportError) as caught:
        export_for_task("caption", str(tiny_blip_dir), models_dir, quantize=True)
    assert "no int8 variant" in str(caught.value)
    with pytest.raises(ExportError) as caught:
        export_for_task("speech-to-text", str(tiny_whisper_dir), models_dir)
    assert "PyTorch only" in str(caught.value)
    assert not any(models_dir.rglob("*.onnx"))  # nothing half-written


def test_one_export_path_exports_and_quantizes(tiny_clip_dir, models_dir):
    from studio.export.manifest import read_manifest
    from studio.export.pipeline import export_for_task

    directory = export_for_task("zero-shot", str(tiny_clip_dir), models_dir, quantize=True)
    manifest = read_manifest(directory)
    assert set(manifest["graphs"]) == {"image_encoder", "text_encoder"}
    assert manifest["variants"]["int8"]["graphs"]["image_encoder"]["cosine_to_fp32_min"] >= 0.99
