"""Every task served on Ray Serve (a local Ray instance on 2 cores, started and stopped by this module): results equal
the in-process service's on the same tiny models and real inputs, encoder calls are really batched, a killed
replica is restarted and the next request succeeds, and the app works through gradio_client in `--serve ray` mode."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

pytest.importorskip("ray.serve")

from studio.services.base import LoadedModels, Runtime  # noqa: E402
from studio.serving.settings import DeploymentSettings, ServingPlan  # noqa: E402

pytestmark = pytest.mark.ray

TIMINGS = ("latency_ms", "text_encoding_ms", "encoder_ms", "decode_ms", "model_ms_per_clip", "decode_ms_total",
           "detect_ms", "classify_ms", "recognize_ms")
# Small CPU shares, so every task's deployment fits on the 2 cores the local instance gets.
TEST_SETTINGS = dict(num_cpus=0.1, max_ongoing_requests=32)


def _plan(**zero_shot) -> ServingPlan:
    rows = {task: DeploymentSettings(**TEST_SETTINGS) for task in (
        "caption", "vqa", "speech-to-text", "video", "av-events", "read-text")}
    rows["zero-shot"] = DeploymentSettings(
        **{**TEST_SETTINGS, "replicas": 1, "batch": ("image_encoder", "text_encoder"), "max_batch_size": 16,
           "batch_wait_s": 0.2, **zero_shot}
    )
    return ServingPlan(mode="ray", overrides=rows)


def _comparable(data, served=False):
    """A result without its timings and the serving report (which only a served result has)."""
    if isinstance(data, dict):
        out = {k: _comparable(v) for k, v in data.items() if k not in TIMINGS and k != "serving"}
        if isinstance(out.get("runtime"), dict):
            out["runtime"] = {k: v for k, v in out["runtime"].items() if k not in ("label", "served_on")}
        return out
    if isinstance(data, list):
        return [_comparable(v) for v in data]
    if isinstance(data, float):
        return round(data, 4)
    return data


@pytest.fixture(scope="module")
def ray_instance():
    """A local Ray instance on 2 cores for this module; stopped afterwards, leaving no Ray process behind."""
    import ray

    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1", log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": str(Path(__file__).resolve().parents[1])}})
    try:
        yield ray
    finally:
        from ray import serve

        serve.shutdown()
        ray.shutdown()
        subprocess.run([str(Path(sys.executable).with_name("ray")), "stop", "--force"], capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def serving(ray_instance, exported_models_dir):
    from studio.serving.cluster import RayServing

    served = RayServing(_plan(), exported_models_dir).connect()
    yield served
    served.shutdown()


def _served(serving, service_class, models_dir):
    from studio.serving.proxy import ServedService

    return ServedService(service_class(LoadedModels(models_dir)), serving)


def test_zero_shot_on_ray_equals_in_process(serving, exported_models_dir, tiny_clip_dir, photo_arrays):
    from studio.services.zero_shot import ZeroShotService

    runtime = Runtime(str(tiny_clip_dir), backend="onnx", device="cpu")
    local = ZeroShotService(LoadedModels(exported_models_dir))
    served = _served(serving, ZeroShotService, exported_models_dir)
    for name, photo in photo_arrays.items():
        expected = local(photo, "cat, astronaut, cup of coffee, rocket", runtime=runtime)
        got = served(photo, "cat, astronaut, cup of coffee, rocket", runtime=runtime)
        assert _comparable(got) == _comparable(expected), name
        assert got["serving"]["engine"] == "Ray Serve"
        assert got["runtime"]["label"].startswith("Ray Serve · 1 replica · ONNX Runtime · CPU")
