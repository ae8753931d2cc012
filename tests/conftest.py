"""Fixtures every capability's tests share: isolated models directories, real photos, the `studio` command's
environment, and Debian chromium with playwright. Each capability's own fixtures (its tiny models, their exports, its
launched app, its references) are in tests/fixtures/<capability>.py, imported here so that any test module can ask for
them; the tiny models themselves are made by tests/tiny/. Plain helpers are in tests/helpers.py."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.fixtures.ask import *  # noqa: F401,F403
from tests.fixtures.caption import *  # noqa: F401,F403
from tests.fixtures.describe import *  # noqa: F401,F403
from tests.fixtures.finetune import *  # noqa: F401,F403
from tests.fixtures.read_text import *  # noqa: F401,F403
from tests.fixtures.search import *  # noqa: F401,F403
from tests.fixtures.sound import *  # noqa: F401,F403
from tests.fixtures.video import *  # noqa: F401,F403
from tests.fixtures.zero_shot import *  # noqa: F401,F403
from tests.helpers import ARTIFACTS, launch_chromium

# No test may reach a model hub; a test that tries fails fast instead of hanging.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


@pytest.fixture
def models_dir(tmp_path) -> Path:
    """An empty models directory of the test's own."""
    d = tmp_path / "exported"
    d.mkdir()
    return d


@pytest.fixture(scope="session")
def exports(tmp_path_factory):
    """exports(task, *model_dirs) -> the task's shared models directory, holding those tiny models' ONNX exports for the
    task, each made the first time it is asked for: no model is exported twice in a session (read-only for tests: copy
    it before writing)."""
    from studio.export.exporter import export_model
    from studio.sources import resolve

    models_dirs: dict[str, Path] = {}
    done: set[tuple[str, Path]] = set()

    def export(task: str, *models: Path) -> Path:
        if task not in models_dirs:
            models_dirs[task] = tmp_path_factory.mktemp(f"exported-{task}")
        for model in models:
            if (task, model) not in done:
                export_model(resolve(str(model), task, models_dirs[task]), models_dirs[task])
                done.add((task, model))
        return models_dirs[task]

    return export


@pytest.fixture(scope="session")
def photos() -> dict[str, Image.Image]:
    """Real photos from scikit-image."""
    import skimage.data

    return {name: Image.fromarray(getattr(skimage.data, name)()) for name in ("astronaut", "chelsea", "coffee")}


@pytest.fixture(scope="session")
def photo_arrays(photos) -> dict[str, np.ndarray]:
    return {k: np.asarray(v) for k, v in photos.items()}


# The `studio` command --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cli_env(tmp_path_factory) -> dict[str, str]:
    """The environment `studio` commands run in (tests.helpers.studio): offline, as on a machine without internet."""
    home = tmp_path_factory.mktemp("cli-home")
    return {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "HF_HOME": str(home / "hf"),  # an empty Hugging Face cache: nothing downloaded on this "machine"
        "STUDIO_MODELS_DIR": str(home / "default-models"),  # never the checkout's exported/ folder
        "PYTHONWARNINGS": "ignore",
    }


# Debian chromium with playwright (browser tests) ------------------------------------------------------------------


@pytest.fixture(scope="module")
def chromium() -> str:
    """Debian's chromium; its absence fails the tests (scripts/bootstrap --dev installs it)."""
    import shutil

    path = shutil.which("chromium")
    assert path, "chromium is not on PATH: install Debian's chromium (scripts/bootstrap --dev does)"
    return path


@pytest.fixture(scope="module")
def pw():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def browser(pw, chromium):
    """Chromium launched with tests.helpers.CHROMIUM_ARGS, for the module's tests."""
    b = launch_chromium(pw, chromium)
    yield b
    b.close()


@pytest.fixture(scope="module")
def artifacts(request) -> Path:
    """test-artifacts/, for screenshots, without the module's failure screenshots from an earlier failed run.

    The module names its screenshots' prefix in `ARTIFACT_PREFIX` ("browser-caption": browser-caption-*-FAILED.png).
    """
    ARTIFACTS.mkdir(exist_ok=True)
    for stale in ARTIFACTS.glob(f"{request.module.ARTIFACT_PREFIX}-*-FAILED.png"):  # from an earlier failed run
        stale.unlink()
    return ARTIFACTS
