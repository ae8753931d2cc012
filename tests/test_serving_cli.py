"""`studio --serve ...` and `studio models` as a user runs them, with no Ray cluster to join: a cluster that cannot be
reached is one sentence (exit status 2) with `--serve ray`, and the app starts in-process with `--serve auto`; the
deployment settings table and a `--serve-config` file are printed by `studio models`. No Ray instance is started."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request

import pytest

from tests.helpers import REPO, assert_plain_sentence, error_sentence, free_port, stdout_json, studio

pytest.importorskip("ray")


@pytest.fixture(scope="module")
def no_cluster_env(cli_env, tmp_path_factory) -> dict[str, str]:
    """The command's environment on a machine where no Ray cluster runs (an empty Ray folder, no RAY_ADDRESS)."""
    env = {k: v for k, v in cli_env.items() if k != "RAY_ADDRESS"}
    env["RAY_TMPDIR"] = str(tmp_path_factory.mktemp("no-ray"))
    return env


def test_serve_ray_without_a_cluster_is_one_sentence(no_cluster_env):
    sentence = error_sentence(studio(no_cluster_env, "--serve", "ray", "--ray-address", "auto", "--no-browser"))
    assert_plain_sentence(sentence, "No running Ray cluster", "ray start --head")


def test_a_ray_address_that_is_no_address_is_one_sentence(no_cluster_env):
    sentence = error_sentence(studio(no_cluster_env, "--ray-address", "gpu-box:6379", "--no-browser"))
    assert_plain_sentence(sentence, "--ray-address", "ray://host:10001", "gpu-box:6379")


def test_serve_auto_falls_back_to_in_process_and_says_so(no_cluster_env, models_dir):
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "studio", "--serve", "auto", "--ray-address", "auto", "--no-browser",
         "--port", str(port), "--models-dir", str(models_dir)],
        env=no_cluster_env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline, page = time.monotonic() + 180, None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                page = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5).read().decode()
                break
            except OSError:
                time.sleep(1)
        assert page and "Multimodal Studio" in page, "the app did not start in-process"
    finally:
        proc.terminate()
        _, stderr = proc.communicate(timeout=60)
    said = [line for line in stderr.splitlines() if line.startswith("studio: ")]
    assert said and "No running Ray cluster was found" in said[0] and "runs in this process instead" in said[0]


def test_models_lists_each_tasks_deployment_settings_and_the_config_files_rows(cli_env, tmp_path):
    table = stdout_json(studio(cli_env, "models", "--task", "zero-shot"))["serving"]
    assert table["mode"] == "inprocess" and table["deployments"]["zero-shot"]["batch"] == [
        "image_encoder", "text_encoder"
    ]  # fmt: skip
    config = tmp_path / "serve.toml"
    config.write_text(
        '[zero-shot]\nreplicas = 4\nnum_gpus = 0.5\nbatch = ["image_encoder"]\n\n[search]\nnum_cpus = 2\n'
    )
    printed = stdout_json(studio(cli_env, "models", "--serve-config", config))["serving"]["deployments"]
    assert printed["zero-shot"]["replicas"] == 4 and printed["zero-shot"]["num_gpus"] == 0.5
    assert printed["zero-shot"]["batch"] == ["image_encoder"]
    assert printed["zero-shot"]["max_batch_size"] == table["deployments"]["zero-shot"]["max_batch_size"]  # kept
    assert printed["search"]["num_cpus"] == 2
    config.write_text("[zero-shot]\nreplica = 4\n")
    sentence = error_sentence(studio(cli_env, "models", "--serve-config", config))
    assert_plain_sentence(sentence, "replica", "do not exist", "replicas")
    config.write_text("[zero-shot\n")
    assert_plain_sentence(error_sentence(studio(cli_env, "models", "--serve-config", config)), "not valid TOML")
