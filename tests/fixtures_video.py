"""Fixtures of the video tests: tiny random VideoMAE and TimeSformer, their exports, and clips written by OpenCV."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.tiny_video import drawn_frames, make_tiny_video_classifier, make_tiny_xclip, write_clip


@pytest.fixture(scope="session")
def tiny_videomae_dir(tmp_path_factory) -> Path:
    return make_tiny_video_classifier(tmp_path_factory.mktemp("models") / "tiny-videomae", "videomae")


@pytest.fixture(scope="session")
def tiny_timesformer_dir(tmp_path_factory) -> Path:
    return make_tiny_video_classifier(tmp_path_factory.mktemp("models") / "tiny-timesformer", "timesformer", seed=1)


@pytest.fixture(scope="session")
def tiny_xclip_dir(tmp_path_factory, clip_vocab_dir) -> Path:
    return make_tiny_xclip(tmp_path_factory.mktemp("models") / "tiny-xclip", clip_vocab_dir)


@pytest.fixture(scope="session")
def video_exports(tmp_path_factory):
    """export(*model_dirs) -> one models directory holding those tiny models' ONNX exports, each made once per
    session when first asked for (read-only for tests: copy it before writing)."""
    from studio.export.exporter import export_model
    from studio.sources import resolve

    models_dir = tmp_path_factory.mktemp("exported-video")
    done: set[Path] = set()

    def export(*models: Path) -> Path:
        for model in models:
            if model not in done:
                export_model(resolve(str(model), "video", models_dir), models_dir)
                done.add(model)
        return models_dir

    return export


@pytest.fixture(scope="session")
def video_exports_dir(video_exports, tiny_videomae_dir, tiny_timesformer_dir, tiny_xclip_dir) -> Path:
    """A models directory holding the three tiny video models' ONNX exports, shared by read-only tests."""
    return video_exports(tiny_videomae_dir, tiny_timesformer_dir, tiny_xclip_dir)


@pytest.fixture(scope="session")
def clips(tmp_path_factory) -> dict[str, Path]:
    """Test clips: 3.5 s at 10 frames/s (35 frames), 12 s at 5 frames/s, and one frame."""
    out = tmp_path_factory.mktemp("clips")
    return {
        "short": write_clip(out / "short.mp4", drawn_frames(35), fps=10),
        "long": write_clip(out / "long.avi", drawn_frames(60, seed=1), fps=5, fourcc="MJPG"),
        "one-frame": write_clip(out / "one-frame.mp4", drawn_frames(1), fps=10),
    }


@pytest.fixture(scope="module")
def video_app(tmp_path_factory, video_exports, tiny_videomae_dir):
    """The real app with the tiny VideoMAE preselected in the Video tab, on a copy of its export."""
    from tests.conftest import launched_app

    exports = video_exports(tiny_videomae_dir)
    yield from launched_app(tmp_path_factory, "video-app-models", exports, {"video": tiny_videomae_dir})
