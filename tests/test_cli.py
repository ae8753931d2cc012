"""The `studio` command itself, run as a user runs it (a separate process, JSON on stdout, sentences on stderr): its
help, the `studio models` listing, and the launcher's options. Each tab's commands are tested in test_<tab>_cli.py.

No model hub is reachable (the `cli_env` fixture: HF_HUB_OFFLINE=1 and an empty HF_HOME), as on a machine without
internet.
"""

from __future__ import annotations

import time

import pytest

from tests.helpers import assert_plain_sentence, error_sentence, stdout_json, studio

# Help -------------------------------------------------------------------------------------------------------------


def test_help_is_fast(cli_env):
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        proc = studio(cli_env, "--help", timeout=30)
        best = min(best, time.perf_counter() - started)
        assert proc.returncode == 0, proc.stderr
        for command in ("predict", "export", "models", "bench"):
            assert command in proc.stdout
    assert best < 1.0, f"`studio --help` took {best:.2f} s at best"


# models -----------------------------------------------------------------------------------------------------------


def test_models_lists_the_registry_as_missing(cli_env, models_dir):
    from studio.registry import REGISTRY

    out = stdout_json(studio(cli_env, "models", "--models-dir", models_dir))
    assert out["models_dir"] == str(models_dir.resolve())
    rows = {row["model"]: row for row in out["models"]}
    assert set(rows) == {spec.hub_id for spec in REGISTRY}
    tasks = {spec.task for spec in REGISTRY}
    defaults = sorted(row["model"] for row in out["models"] if row["default"])
    assert defaults == sorted(REGISTRY.default_for(task).hub_id for task in tasks)
    for spec in REGISTRY:
        row = rows[spec.hub_id]
        if spec.package is not None:  # shipped in an installed package (PP-OCR): there, with nothing to export
            assert row["state"].startswith(f"in the installed package {spec.package} "), row
            assert row["on_disk"] is True and row["exported_variants"] == ["fp32"] and row["revision"] == spec.revision
            continue
        assert row["state"].startswith("missing"), row
        assert row["on_disk"] is False and row["exported_variants"] == []
        assert row["revision"] == spec.revision and row["task"] == spec.task


def test_models_dir_given_before_the_command(cli_env, models_dir):
    out = stdout_json(studio(cli_env, "--models-dir", models_dir, "models", "--task", "zero-shot"))
    assert out["models_dir"] == str(models_dir.resolve())
    assert out["models"]


# The launcher -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("pair", ["/data/my-clip", "captioning=/data/my-model"])
def test_launcher_rejects_a_bad_model_choice(pair, cli_env, models_dir):
    proc = studio(cli_env, "--no-browser", "--models-dir", models_dir, "--model", pair, timeout=60)
    assert_plain_sentence(error_sentence(proc), "TASK=MODEL", "zero-shot")
