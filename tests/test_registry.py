"""The registry is data: pinned revisions, one default per task, duplicates refused."""

from __future__ import annotations

import re

import pytest

from studio.families import get_family
from studio.registry import REGISTRY, ModelSpec, Registry

# Rows whose commit could not be verified offline when they were written: pinned at first download instead.
# Rows whose commit could not be verified without hub access: pinned in <models-dir>/pins.json at first download.
PINNED_AT_FIRST_DOWNLOAD = {
    "dandelin/vilt-b32-finetuned-vqa",
    "Salesforce/blip-vqa-base",
    "openai/whisper-tiny.en",
    "HuggingFaceTB/SmolVLM-256M-Instruct",
    "HuggingFaceTB/SmolVLM-500M-Instruct",
}


@pytest.mark.parametrize("spec", list(REGISTRY), ids=lambda s: s.key)
def test_rows_are_pinned_and_buildable(spec):
    family = get_family(spec.family)
    assert spec.title and spec.licence and family.GRAPHS
    if spec.package is not None:  # graphs shipped in a package: its version, and every graph's file and sha256
        assert re.fullmatch(r"\d+(\.\d+)+", spec.revision) and getattr(family, "SHIPS_ONNX", False)
        assert set(spec.graphs) == {g.name for g in family.GRAPHS}
        assert all(
            re.fullmatch(r"[0-9a-f]{64}", g["sha256"]) and g["file"].endswith(".onnx") for g in spec.graphs.values()
        )
        return
    if spec.revision is None:
        assert spec.hub_id in PINNED_AT_FIRST_DOWNLOAD, "every new hub id is pinned to a commit"
    else:
        assert re.fullmatch(r"[0-9a-f]{40}", spec.revision), "every hub id is pinned to a commit"
    assert spec.architecture["model_type"]


def test_each_task_has_exactly_one_default():
    tasks = {spec.task for spec in REGISTRY}
    for task in tasks:
        assert sum(spec.default for spec in REGISTRY.for_task(task)) == 1
        assert REGISTRY.for_task(task)[0] is REGISTRY.default_for(task)


def test_duplicate_rows_fail_loudly():
    row = next(iter(REGISTRY))
    with pytest.raises(KeyError):
        Registry((row, row))
    other = ModelSpec(
        task=row.task, hub_id="someone/else", revision="0" * 40, family=row.family, title="x", licence="x", default=True
    )
    with pytest.raises(KeyError):
        Registry((row, other))  # two defaults for one task


def test_find_is_case_insensitive():
    row = REGISTRY.default_for("zero-shot")
    assert REGISTRY.find("zero-shot", row.hub_id.upper()) is row
    assert REGISTRY.find("zero-shot", "nobody/nothing") is None
