"""Every model family of studio/families/, through the one export path: its tiny model (tests.tiny.MAKERS) exported
with `export_model` records each graph's parity with PyTorch within that graph's tolerance, its ONNX graphs give the
PyTorch modules' outputs when run through our two backends, its manifest carries the family's metadata, and where a
graph is quantizable an int8 variant stays close to full precision. A family that runs with PyTorch only is refused
an export in a sentence.

The tiny models and their exports are the session fixtures the capabilities' tests share (tests/fixtures/, the
`exports` fixture), built with the same makers, so nothing is exported twice. Comparisons with transformers' own
models, processors and generate() are in each capability's parity tests.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from studio.backends.onnx import OnnxBackend
from studio.backends.pytorch import TorchBackend
from studio.errors import ExportError
from studio.export.exporter import export_dir, export_model, parity_photos
from studio.export.manifest import read_manifest
from studio.export.quantize import quantize_export
from studio.families import _MODULES, FAMILY_BY_ARCHITECTURE, get_family
from studio.registry import REGISTRY
from studio.sources import resolve
from tests.fixtures import TINY_MODEL_FIXTURES
from tests.helpers import assert_plain_sentence
from tests.tiny import MAKERS

FAMILIES = sorted(set(_MODULES) | set(FAMILY_BY_ARCHITECTURE.values()))
TASK_OF = {row.family: row.task for row in REGISTRY}
EXPORTABLE = [f for f in FAMILIES if f in MAKERS and getattr(get_family(f), "EXPORTABLE", True)]
PYTORCH_ONLY = [f for f in FAMILIES if f in MAKERS and f not in EXPORTABLE]
# A family that asks more of int8 than close outputs (`check_int8`: SmolVLM's same greedy words) tests that itself
# (tests/test_describe_parity.py): on a tiny random model the answer may rightly be a refusal.
QUANTIZABLE = [
    f
    for f in EXPORTABLE
    if any(spec.quantizable for spec in get_family(f).GRAPHS) and not hasattr(get_family(f), "check_int8")
]


def tiny_model(request, family: str) -> Path:
    """The family's tiny model folder: the session fixture's that the capabilities' tests share, where one is made with
    the family's maker, else made here with it."""
    make = MAKERS[family]
    if make in TINY_MODEL_FIXTURES:
        return request.getfixturevalue(TINY_MODEL_FIXTURES[make])
    return make(request.getfixturevalue("tmp_path_factory").mktemp("models") / f"tiny-{family}")


@pytest.fixture(scope="module", params=EXPORTABLE)
def exported(request, exports) -> SimpleNamespace:
    """One family's export: family (its module), name, model (loaded in PyTorch), directory, manifest."""
    name = request.param
    model_dir = tiny_model(request, name)
    models_dir = exports(TASK_OF[name], model_dir)  # the capabilities' tests share it
    source = resolve(str(model_dir), TASK_OF[name], models_dir)
    assert source.family == name, f"the tiny {name} model is run by the {source.family} family"
    directory = export_dir(models_dir, source)
    family = get_family(name)
    return SimpleNamespace(
        name=name,
        family=family,
        model=family.load_model(model_dir),
        directory=directory,
        manifest=read_manifest(directory),
    )


def test_every_family_has_a_tiny_model_and_one_task():
    # A family whose real ONNX graphs ship in a package (PP-OCR) has no tiny model: its tests run the real weights
    # (test_read_text_parity.py), and its graphs are pinned by sha256 in its registry row, not exported.
    shipped = {f for f in FAMILIES if getattr(get_family(f), "SHIPS_ONNX", False)}
    assert shipped == {row.family for row in REGISTRY if row.package}
    assert set(MAKERS) == set(FAMILIES) - shipped
    assert set(TASK_OF) == set(FAMILIES)
    assert len({(row.family, row.task) for row in REGISTRY}) == len(TASK_OF)
    assert EXPORTABLE and PYTORCH_ONLY and QUANTIZABLE


def test_the_manifest_records_each_graphs_parity_within_its_tolerance(exported):
    manifest, family = exported.manifest, exported.family
    assert manifest["family"] == exported.name and manifest["task"] == TASK_OF[exported.name]
    assert set(manifest["graphs"]) == {spec.name for spec in family.GRAPHS}
    for spec in family.GRAPHS:
        entry = manifest["graphs"][spec.name]
        assert entry["tolerance"] == spec.tolerance, spec.name
        assert 0 <= entry["max_abs_diff"] <= spec.tolerance["atol"], (spec.name, entry)
        assert (entry["inputs"], entry["outputs"]) == (list(spec.input_names), list(spec.output_names))
    if hasattr(family, "PARITY_INPUTS"):  # families that are not checked on the example photos say on what
        assert manifest["parity_inputs"] == family.PARITY_INPUTS


def test_onnx_graphs_and_pytorch_modules_agree_on_the_parity_inputs(exported):
    family = exported.family
    inputs = family.parity_inputs(exported.directory, parity_photos(), exported.model)
    for spec in family.GRAPHS:
        onnx = OnnxBackend(exported.directory / exported.manifest["graphs"][spec.name]["file"], device="cpu")
        pytorch = TorchBackend(spec.build(exported.model), spec.input_names, spec.output_names, device="cpu")
        assert onnx.runtime.engine == "ONNX Runtime" and pytorch.runtime.engine == "PyTorch"
        got, expected = onnx.run(inputs[spec.name]), pytorch.run(inputs[spec.name])
        assert set(got) == set(expected) == set(spec.output_names), spec.name
        for output in spec.output_names:
            torch.testing.assert_close(
                torch.from_numpy(got[output]), torch.from_numpy(expected[output]), **spec.tolerance, msg=output
            )


def test_the_manifest_carries_the_familys_metadata(exported):
    as_json = json.loads(json.dumps(exported.family.metadata(exported.model)))  # as the manifest stores it
    assert exported.manifest["metadata"] == as_json


@pytest.mark.parametrize("exported", QUANTIZABLE, indirect=True)
def test_quantizing_adds_an_int8_variant_close_to_full_precision(exported, tmp_path):
    directory = shutil.copytree(exported.directory, tmp_path / exported.directory.name)
    manifest = read_manifest(directory)
    if manifest["variants"].pop("int8", None):  # a shared export may be quantized already: start from fp32 only
        for old in directory.glob("*.int8.onnx"):
            old.unlink()
        (directory / "manifest.json").write_text(json.dumps(manifest))
    entry = quantize_export(directory)
    assert set(entry["graphs"]) == {spec.name for spec in exported.family.GRAPHS if spec.quantizable}
    for name, graph in entry["graphs"].items():
        assert graph["cosine_to_fp32_min"] >= 0.99, name
        assert (directory / graph["file"]).is_file()
    assert read_manifest(directory)["variants"]["int8"] == entry


@pytest.mark.parametrize("name", PYTORCH_ONLY)
def test_a_pytorch_only_family_is_refused_an_export_in_a_sentence(name, request, models_dir):
    source = resolve(str(tiny_model(request, name)), TASK_OF[name], models_dir)
    assert source.family == name
    with pytest.raises(ExportError) as refused:
        export_model(source, models_dir)
    assert_plain_sentence(str(refused.value), "PyTorch only", "no ONNX export")
    assert not any(models_dir.iterdir())
