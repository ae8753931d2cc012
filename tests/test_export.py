"""Exports: manifest contents, parity refusal, int8 refusal, atomic replacement, stale local folders."""

from __future__ import annotations

import json
import shutil

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from studio.errors import ExportError
from studio.export.exporter import check_parity, export_model
from studio.export.manifest import sha256_file
from studio.export.quantize import quantize_export
from studio.families import get_family
from studio.loading import load_graphs, model_state
from studio.sources import resolve


def _export_dir(models_dir):
    return next(models_dir.glob("zero-shot/*/manifest.json")).parent


def test_manifest_records_source_hashes_and_parity(exported_models_dir, tiny_clip_dir):
    directory = _export_dir(exported_models_dir)
    manifest = json.loads((directory / "manifest.json").read_text())
    assert manifest["source"]["kind"] == "directory"
    assert manifest["source"]["path"] == str(tiny_clip_dir)
    assert len(manifest["source"]["sha256"]) == 64
    assert manifest["opset"] >= 17
    for name in ("image_encoder", "text_encoder"):
        entry = manifest["graphs"][name]
        for file_name, digest in entry["sha256"].items():
            assert sha256_file(directory / file_name) == digest
        assert 0 <= entry["max_abs_diff"] <= entry["tolerance"]["atol"]
    int8 = manifest["variants"]["int8"]["graphs"]["image_encoder"]
    assert int8["cosine_to_fp32_min"] >= 0.99
    assert sha256_file(directory / int8["file"]) == int8["sha256"][int8["file"]]
    assert manifest["metadata"]["logit_scale"] == pytest.approx(np.exp(4.0), rel=1e-5)
    for needed in ("tokenizer.json", "tokenizer_config.json"):
        assert (directory / needed).is_file()


def test_a_graph_that_disagrees_with_pytorch_is_refused(exported_models_dir, tiny_clip_dir, tmp_path):
    family = get_family("clip")
    spec = next(g for g in family.GRAPHS if g.name == "image_encoder")
    directory = _export_dir(exported_models_dir)
    model = onnx.load(str(directory / "image_encoder.onnx"))
    # Perturb the weight matrices as a broken exporter might: the graph still runs, but computes something else.
    rng = np.random.default_rng(1)
    for init in model.graph.initializer:
        weights = numpy_helper.to_array(init)
        if weights.dtype == np.float32 and weights.ndim == 2:
            noisy = weights + rng.normal(0, 0.05, weights.shape).astype(np.float32)
            init.CopyFrom(numpy_helper.from_array(noisy, init.name))
    broken = tmp_path / "image_encoder.onnx"
    onnx.save(model, str(broken))
    torch_module = spec.build(family.load_model(tiny_clip_dir))
    pixels = np.random.default_rng(0).standard_normal((2, 3, 32, 32), dtype=np.float32)
    with pytest.raises(ExportError, match="different results from PyTorch"):
        check_parity(torch_module, spec, {"pixel_values": pixels}, broken)
    assert check_parity(torch_module, spec, {"pixel_values": pixels}, directory / "image_encoder.onnx") < 1e-4


def test_int8_below_the_cosine_threshold_is_refused_and_nothing_changes(exported_models_dir, tmp_path):
    directory = tmp_path / "copy"
    shutil.copytree(_export_dir(exported_models_dir), directory)
    (directory / "image_encoder.int8.onnx").unlink()
    manifest = json.loads((directory / "manifest.json").read_text())
    del manifest["variants"]["int8"]
    (directory / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ExportError, match="drifts too far"):
        quantize_export(directory, min_cosine=1.000001)  # no int8 graph can reach this
    assert not (directory / "image_encoder.int8.onnx").exists()
    assert not list(directory.glob(".*tmp"))
    assert json.loads((directory / "manifest.json").read_text()) == manifest


def test_failed_re_export_keeps_the_previous_export(exported_models_dir, tiny_clip_dir, tmp_path, monkeypatch):
    models_dir = tmp_path / "exported"
    shutil.copytree(exported_models_dir, models_dir)
    directory = _export_dir(models_dir)
    before = {p.name: sha256_file(p) for p in directory.iterdir()}

    def fail_on_text_encoder(module, spec, example, path):
        if spec.name == "text_encoder":
            raise ExportError("simulated failure half-way through the export")
        return 0.0

    monkeypatch.setattr("studio.export.exporter.check_parity", fail_on_text_encoder)
    with pytest.raises(ExportError, match="half-way"):
        export_model(resolve(str(tiny_clip_dir), "zero-shot", models_dir), models_dir)
    assert {p.name: sha256_file(p) for p in directory.iterdir()} == before
    assert [p.name for p in directory.parent.iterdir()] == [directory.name]  # no temporary folders left


def test_changed_local_model_makes_the_export_stale(tiny_clip_dir, exported_models_dir, tmp_path):
    model_dir = tmp_path / "my-clip"
    shutil.copytree(tiny_clip_dir, model_dir)
    models_dir = tmp_path / "exported"
    source = resolve(str(model_dir), "zero-shot", models_dir)
    export_model(source, models_dir)
    assert model_state(source, models_dir).variants == ("fp32",)
    assert not model_state(source, models_dir).stale
    config = model_dir / "config.json"
    config.write_text(config.read_text() + "\n")  # the user edits the model folder
    assert model_state(source, models_dir).stale
    graphs = load_graphs(source, models_dir, backend="auto", device="cpu")
    assert graphs.runtime.engine == "PyTorch"
    assert any("changed since it was exported" in n for n in graphs.notices)


def test_missing_int8_is_made_on_request(exported_models_dir, tiny_clip_dir, tmp_path):
    models_dir = tmp_path / "exported"
    shutil.copytree(exported_models_dir, models_dir)
    directory = _export_dir(models_dir)
    (directory / "image_encoder.int8.onnx").unlink()
    manifest = json.loads((directory / "manifest.json").read_text())
    del manifest["variants"]["int8"]
    (directory / "manifest.json").write_text(json.dumps(manifest))
    source = resolve(str(tiny_clip_dir), "zero-shot", models_dir)
    graphs = load_graphs(source, models_dir, backend="auto", device="cpu", variant="int8")
    assert graphs.runtime.variant == "int8"
    assert any("int8" in n for n in graphs.notices)
    assert (directory / "image_encoder.int8.onnx").is_file()
