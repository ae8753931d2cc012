"""Every task served on Ray Serve (a local Ray instance on 2 cores, started and stopped by this module): results equal
the in-process service's on the same tiny models and real inputs, encoder calls are really batched, a killed
replica is restarted and the next request succeeds, and the app works through gradio_client in `--serve ray` mode."""

from __future__ import annotations

import os
import shutil
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

pytest.importorskip("ray.serve")

from studio.services.base import LoadedModels, Runtime  # noqa: E402
from studio.serving.settings import DeploymentSettings, ServingPlan  # noqa: E402

pytestmark = pytest.mark.ray
ARTIFACT_PREFIX = "browser-serving"  # screenshots: test-artifacts/browser-serving-*.png

TIMINGS = (
    "latency_ms",
    "text_encoding_ms",
    "encoder_ms",
    "decode_ms",
    "model_ms_per_clip",
    "decode_ms_total",
    "detect_ms",
    "classify_ms",
    "recognize_ms",
)
# Small CPU shares, so every task's deployment fits on the 2 cores the local instance gets.
TEST_SETTINGS = dict(num_cpus=0.1, max_ongoing_requests=32)


def _plan(**zero_shot) -> ServingPlan:
    rows = {
        task: DeploymentSettings(**TEST_SETTINGS)
        for task in ("caption", "vqa", "speech-to-text", "video", "av-events", "read-text")
    }
    rows["zero-shot"] = DeploymentSettings(
        **{
            **TEST_SETTINGS,
            "replicas": 1,
            "batch": ("image_encoder", "text_encoder"),
            "max_batch_size": 16,
            "batch_wait_s": 0.2,
            **zero_shot,
        }
    )
    return ServingPlan(mode="ray", overrides=rows)


def _comparable(data):
    """A result without its timings and the serving report (which only a served result has)."""
    if isinstance(data, dict):
        out = {k: _comparable(v) for k, v in data.items() if k not in TIMINGS and k != "serving"}
        if isinstance(out.get("runtime"), dict):
            out["runtime"] = {k: v for k, v in out["runtime"].items() if k not in ("label", "served_on")}
        return out
    if isinstance(data, (list, tuple)):
        return [_comparable(v) for v in data]
    return data


def assert_same(got, expected, where="result"):
    """Equal plain data; numbers within 1e-4 (a replica's ONNX Runtime may use fewer threads, so sums may round
    differently in the last digits)."""
    got, expected = _comparable(got), _comparable(expected)
    if isinstance(expected, dict):
        assert isinstance(got, dict) and set(got) == set(expected), (where, sorted(got), sorted(expected))
        for key in expected:
            assert_same(got[key], expected[key], f"{where}.{key}")
    elif isinstance(expected, list):
        assert isinstance(got, list) and len(got) == len(expected), where
        for i, (a, b) in enumerate(zip(got, expected)):
            assert_same(a, b, f"{where}[{i}]")
    elif isinstance(expected, float):
        assert got == pytest.approx(expected, abs=1e-4), where
    else:
        assert got == expected, where


@pytest.fixture(scope="module")
def ray_instance():
    """A local Ray instance on 2 cores for this module, on 127.0.0.1 without a dashboard; stopped afterwards, and none
    of its processes may be left behind (only this instance's: other Ray instances on the machine are not touched)."""
    import ray

    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    context = ray.init(
        num_cpus=2,
        include_dashboard=False,
        _node_ip_address="127.0.0.1",
        log_to_driver=False,
        runtime_env={"env_vars": {"PYTHONPATH": str(Path(__file__).resolve().parents[1])}},
    )
    session = Path(context.address_info["session_dir"]).name
    try:
        yield ray
    finally:
        from ray import serve

        serve.shutdown()
        ray.shutdown()
        deadline = time.monotonic() + 30
        while _processes_of(session) and time.monotonic() < deadline:
            time.sleep(0.5)
        left = _processes_of(session)
        for pid in left:  # ours only: the processes whose command line names this instance's session
            os.kill(pid, signal.SIGKILL)
        assert not left, f"Ray processes left behind: {left}"


def _processes_of(session: str) -> list[int]:
    pids = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if session.encode() in cmdline.read_bytes():
                pids.append(int(cmdline.parent.name))
        except (OSError, ValueError):
            continue
    return pids


@pytest.fixture(scope="module")
def models_dir_all(
    tmp_path_factory,
    exports,
    exported_models_dir,
    tiny_blip_dir,
    tiny_vilt_dir,
    tiny_videomae_dir,
    tiny_ast_dir,
    ocr_models_dir,
) -> Path:
    """One models folder holding the tiny exports of every task (a deployment's replicas all read one folder)."""
    merged = tmp_path_factory.mktemp("serving") / "exported"
    tasks = {"caption": tiny_blip_dir, "vqa": tiny_vilt_dir, "video": tiny_videomae_dir, "av-events": tiny_ast_dir}
    for directory in (exported_models_dir, ocr_models_dir, *(exports(t, m) for t, m in tasks.items())):
        shutil.copytree(directory, merged, dirs_exist_ok=True)
    return merged


@pytest.fixture(scope="module")
def serving(ray_instance, models_dir_all):
    from studio.serving.cluster import RayServing

    served = RayServing(_plan(), models_dir_all).connect()
    yield served
    served.shutdown()


@pytest.fixture(scope="module")
def photo(tmp_path_factory, photos) -> Path:
    path = tmp_path_factory.mktemp("serving-photo") / "coffee.jpg"
    photos["coffee"].save(path)
    return path


def _served(serving, service_class, models_dir):
    from studio.serving.proxy import ServedService

    return ServedService(service_class(LoadedModels(models_dir)), serving)


def _outcome(call):
    """A call's result, or the error a user would be told (type and sentence)."""
    from studio.errors import StudioError

    try:
        return call()
    except StudioError as exc:
        return (type(exc).__name__, str(exc))


def _cpu(fixture):
    return lambda f: Runtime(str(f(fixture)), device="cpu")


# task -> (service "module:Class", method, arguments from fixtures)
CASES = {
    "caption": (
        "studio.services.caption:CaptionService",
        "__call__",
        lambda f: ((f("photo"),), {"verbosity": "detailed", "runtime": _cpu("tiny_blip_dir")(f)}),
    ),
    "live-caption": (
        "studio.services.caption:CaptionService",
        "describe_if_changed",
        lambda f: ((f("photo_arrays")["astronaut"],), {"runtime": _cpu("tiny_blip_dir")(f)}),
    ),
    "vqa": (
        "studio.services.ask:AskService",
        "__call__",
        lambda f: ((f("photo"), "what is on the table?"), {"runtime": _cpu("tiny_vilt_dir")(f)}),
    ),
    "speech-to-text": (
        "studio.services.transcribe:TranscribeService",
        "__call__",
        lambda f: ((f("spoken_question_wav"),), {"runtime": _cpu("tiny_whisper_dir")(f)}),
    ),
    "video": (
        "studio.services.video:VideoService",
        "__call__",
        lambda f: ((f("clips")["short"],), {"window_seconds": 1.0, "runtime": _cpu("tiny_videomae_dir")(f)}),
    ),
    "av-events": (
        "studio.services.sound_scene:SoundSceneService",
        "__call__",
        lambda f: (
            (),
            {
                "audio": f("sounds")["knocks"],
                "image": f("photo"),
                "sound": _cpu("tiny_ast_dir")(f),
                "picture": _cpu("tiny_clip_dir")(f),
            },
        ),
    ),
    "read-text": (
        "studio.services.read_text:ReadTextService",
        "__call__",
        lambda f: ((next(iter(f("text_pages").values()))[0],), {"runtime": Runtime(device="cpu")}),
    ),
}


def test_zero_shot_on_ray_equals_in_process(serving, models_dir_all, tiny_clip_dir, photo_arrays):
    from studio.services.zero_shot import ZeroShotService

    runtime = Runtime(str(tiny_clip_dir), backend="onnx", device="cpu")
    local = ZeroShotService(LoadedModels(models_dir_all))
    served = _served(serving, ZeroShotService, models_dir_all)
    for name, photo in photo_arrays.items():
        expected = local(photo, "cat, astronaut, cup of coffee, rocket", runtime=runtime)
        got = served(photo, "cat, astronaut, cup of coffee, rocket", runtime=runtime)
        assert_same(got, expected, name)
        assert got["serving"]["engine"] == "Ray Serve"
        assert got["runtime"]["label"] == "Ray Serve · 1 replica · " + expected["runtime"]["label"]
    # A user's mistake comes back as the same sentence, raised in the app's process.
    from studio.errors import BadLabelsError

    with pytest.raises(BadLabelsError) as raised:
        served(photo_arrays["coffee"], "cat", runtime=runtime)
    with pytest.raises(BadLabelsError) as expected_error:
        local(photo_arrays["coffee"], "cat", runtime=runtime)
    assert str(raised.value) == str(expected_error.value)


@pytest.mark.parametrize("case", list(CASES))
def test_every_task_on_ray_equals_in_process(case, serving, models_dir_all, request):
    import importlib

    path, method, arguments = CASES[case]
    module, _, name = path.partition(":")
    service_class = getattr(importlib.import_module(module), name)
    args, kwargs = arguments(request.getfixturevalue)
    local = service_class(LoadedModels(models_dir_all))
    served = _served(serving, service_class, models_dir_all)
    expected = _outcome(lambda: getattr(local, method)(*args, **kwargs))
    got = _outcome(lambda: getattr(served, method)(*args, **kwargs))
    assert_same(got, expected)
    if isinstance(got, dict):
        assert got["serving"]["task"] == served.task_name


def test_concurrent_requests_are_batched(serving, models_dir_all, tiny_clip_dir, photo_arrays):
    """16 requests at once run in fewer image-encoder calls than requests, each result equal to its own run."""
    from studio.services.zero_shot import ZeroShotService

    runtime = Runtime(str(tiny_clip_dir), backend="onnx", device="cpu")
    labels = "cat, astronaut, cup of coffee"
    served = _served(serving, ZeroShotService, models_dir_all)
    local = ZeroShotService(LoadedModels(models_dir_all))
    served(photo_arrays["coffee"], labels, runtime=runtime)  # loads the model and the labels
    from studio.services.zero_shot import ZeroShotService as Cls

    handle = serving.handle(Cls).options(multiplexed_model_id=str(tiny_clip_dir))
    before = handle.stats.remote().result()
    pictures = [list(photo_arrays.values())[i % len(photo_arrays)] for i in range(16)]
    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(lambda p: served(p, labels, runtime=runtime), pictures))
    after = handle.stats.remote().result()
    calls = after["graph_calls"]["image_encoder"] - before["graph_calls"].get("image_encoder", 0)
    requests = after["requests"]["image_encoder"] - before["requests"].get("image_encoder", 0)
    assert requests == 16 and calls < 16, (calls, requests)
    sizes = [b["requests"] for r in results for b in r["serving"]["batches"] if b["graph"] == "image_encoder"]
    assert len(sizes) == 16 and max(sizes) > 1
    for picture, result in zip(pictures, results):
        expected = local(picture, labels, runtime=runtime)
        for got, want in zip(result["labels"], expected["labels"]):
            assert got["label"] == want["label"] and got["score"] == pytest.approx(want["score"], abs=1e-4)


def test_a_killed_replica_is_restarted_and_the_next_request_succeeds(
    serving, models_dir_all, tiny_clip_dir, photo_arrays
):
    from studio.services.zero_shot import ZeroShotService

    runtime = Runtime(str(tiny_clip_dir), backend="onnx", device="cpu")
    served = _served(serving, ZeroShotService, models_dir_all)
    first = served(photo_arrays["coffee"], "cat, cup", runtime=runtime)
    os.kill(first["serving"]["pid"], signal.SIGKILL)
    started = time.monotonic()
    second = served(photo_arrays["coffee"], "cat, cup", runtime=runtime)
    assert second["serving"]["pid"] != first["serving"]["pid"]
    assert [r["label"] for r in second["labels"]] == [r["label"] for r in first["labels"]]
    assert time.monotonic() - started < 120


@pytest.fixture(scope="module")
def ray_app(serving, models_dir_all, tiny_clip_dir):
    """The real app on 127.0.0.1 with its tasks on the module's Ray Serve, the tiny CLIP preselected."""
    from studio.ui.app import launch
    from tests.helpers import free_port

    port = free_port()
    demo = launch(
        host="127.0.0.1", port=port, models_dir=models_dir_all, open_browser=False,
        models={"zero-shot": str(tiny_clip_dir)}, block=False, serving=serving,
    )  # fmt: skip
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        demo.close()


def test_the_app_in_serve_ray_mode_through_gradio_client(ray_app, models_dir_all, tiny_clip_dir, photo):
    from gradio_client import Client, handle_file

    from studio.services.zero_shot import ZeroShotService

    client = Client(ray_app, verbose=False)
    scores, announce, _, badge = client.predict(
        handle_file(str(photo)), "cat, astronaut, cup of coffee", str(tiny_clip_dir), "onnx", "cpu", "fp32",
        "single", "a photo of a {}.", "", api_name="/classify",
    )  # fmt: skip
    expected = ZeroShotService(LoadedModels(models_dir_all))(
        photo, "cat, astronaut, cup of coffee", runtime=Runtime(str(tiny_clip_dir), backend="onnx", device="cpu")
    )
    assert scores["label"] == expected["labels"][0]["label"]
    assert "Ray Serve · 1 replica · ONNX Runtime · CPU" in badge


@pytest.mark.browser
def test_the_zero_shot_tab_in_the_browser_says_it_runs_on_ray_serve(ray_app, browser, artifacts, photo):
    from playwright.sync_api import expect

    from tests.helpers import open_page, screenshot_on_failure

    page = open_page(browser, ray_app)
    with screenshot_on_failure(page, artifacts / "browser-serving-photo-FAILED.png"):
        page.get_by_role("tab", name="Photo").click()
        page.locator("#zs-photo input[type=file]").set_input_files(str(photo))
        expect(page.locator("#zs-announce")).to_contain_text("Best match:")
        expect(page.locator("#zs-runtime")).to_contain_text("Ray Serve · 1 replica · ONNX Runtime · CPU")
        page.screenshot(path=str(artifacts / "browser-serving-photo-classified.png"), full_page=True)
