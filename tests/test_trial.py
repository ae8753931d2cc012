"""The trial log (`studio.trial`): one line per record, on disk at once; a crash loses at most the line being
written; ratings refer to outputs and the latest counts; export writes CSV and JSON Lines whole or not at all; the
summary's numbers; participant codes, never names; `studio trial export|summary` and `studio --trial-log`."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from studio.trial import TrialError, TrialLog, check_participant, export, rated_outputs, read_log, summary
from tests.helpers import REPO, assert_plain_sentence, error_sentence, stdout_json, studio


def _result(confidence: float, latency: float = 100.0) -> dict:
    return {
        "model": "rapidocr-onnxruntime/PP-OCRv4",
        "revision": "1.4.4",
        "runtime": {"label": "ONNX Runtime · CPU"},
        "backend": "onnx",
        "confidence": confidence,
        "certainty": "sure",
        "model_text": "EXIT",
        "latency_ms": latency,
        "settings": {"min_confidence": 0.5},
    }


def _filled(folder) -> TrialLog:
    """A log of 5 outputs over two tabs, 4 rated (one rated twice: the later rating counts)."""
    trial = TrialLog(folder, "P07")
    ids = [trial.output(tab="Read text", result=_result(c), text="EXIT.", delivery="spoken") for c in (0.95, 0.97)]
    ids.append(trial.output(tab="Caption", result=_result(0.3, 300), text="Probably a cat.", delivery="shown"))
    ids.append(trial.output(tab="Caption", result=_result(0.05, 500), text="I'm not sure.", delivery="shown"))
    trial.output(tab="Caption", result=_result(0.3, 200), text="Probably a cat.", delivery="skipped-unchanged")
    trial.rate(3, ids[0])
    trial.rate(1, ids[1])
    trial.rate(3, ids[1])  # changed their mind
    trial.rate(2, ids[2])
    trial.rate(1, ids[3])
    return trial


def test_records_are_lines_on_disk_and_ratings_refer_to_outputs(tmp_path):
    trial = _filled(tmp_path / "log")
    lines = (tmp_path / "log" / "trial-log.jsonl").read_text().splitlines()
    assert len(lines) == 10 and all(json.loads(line)["participant"] == "P07" for line in lines)
    rows = rated_outputs(read_log(tmp_path / "log")[0])
    assert [r["rating"] for r in rows] == [3, 3, 2, 1, None]
    assert rows[0]["model"] == "rapidocr-onnxruntime/PP-OCRv4" and rows[0]["runtime"] == "ONNX Runtime · CPU"
    assert trial.rate(2)["output_id"] == rows[-1]["id"]  # no id: the last output
    assert oct((tmp_path / "log" / "trial-log.jsonl").stat().st_mode & 0o777) == "0o600"
    with pytest.raises(TrialError):
        trial.rate(4)


def test_a_crash_loses_at_most_the_line_being_written(tmp_path):
    _filled(tmp_path / "log")
    path = tmp_path / "log" / "trial-log.jsonl"
    with open(path, "ab") as fh:  # a process killed in the middle of a record
        fh.write(b'{"kind": "output", "id": "cut", "text": "half a rec')
    trial = TrialLog(tmp_path / "log", "P07")  # the app started again
    trial.output(tab="Ask", result=_result(0.8), text="Blue.", delivery="spoken")
    records, broken = read_log(tmp_path / "log")
    assert broken == 1 and records[-1]["tab"] == "Ask" and len(records) == 11
    assert export(tmp_path / "log")["broken_lines"] == 1


def test_a_killed_writer_leaves_whole_lines(tmp_path):
    """A separate process appending as fast as it can, killed at a random moment: every line but maybe the last
    is whole JSON."""
    code = (
        "import sys; from studio.trial import TrialLog; t = TrialLog(sys.argv[1], 'P01'); print('go', flush=True)\n"
        "while True: t.output(tab='Caption', result={'confidence': 0.5}, text='x' * 5000, delivery='shown')"
    )
    proc = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], cwd=REPO, stdout=subprocess.PIPE)
    assert proc.stdout.readline().strip() == b"go"
    import time

    time.sleep(0.5)
    proc.kill()
    proc.wait()
    records, broken = read_log(tmp_path)
    assert len(records) > 5 and broken <= 1


def test_export_writes_csv_and_json_lines_whole(tmp_path):
    _filled(tmp_path / "log")
    out = export(tmp_path / "log", tmp_path / "out")
    assert out["outputs"] == 5 and out["rated"] == 4 and out["broken_lines"] == 0
    with open(out["csv"], newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["rating_label"] for r in rows] == ["right", "right", "partly", "wrong", ""]
    assert json.loads(rows[0]["settings"]) == {"min_confidence": 0.5} and rows[0]["revision"] == "1.4.4"
    jsonl = [json.loads(line) for line in open(out["jsonl"])]
    assert [r["id"] for r in jsonl] == [r["id"] for r in rows] and jsonl[2]["text"] == "Probably a cat."
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["outputs.csv", "outputs.jsonl"]  # no leftovers
    # A failed export keeps the files already there.
    before = (tmp_path / "out" / "outputs.csv").read_bytes()
    os.chmod(tmp_path / "out", 0o500)
    try:
        if os.access(tmp_path / "out", os.W_OK):  # root ignores the folder's mode: nothing to show here
            return
        with pytest.raises(TrialError):
            export(tmp_path / "log", tmp_path / "out")
    finally:
        os.chmod(tmp_path / "out", 0o700)
    assert (tmp_path / "out" / "outputs.csv").read_bytes() == before


def test_summary_counts_latency_ratings_and_calibration(tmp_path):
    _filled(tmp_path / "log")
    data = summary(tmp_path / "log")
    assert data["outputs"] == 5 and data["participants"] == ["P07"]
    caption = data["by_tab"]["Caption"]
    assert (caption["outputs"], caption["shown"], caption["skipped-unchanged"], caption["spoken"]) == (3, 2, 1, 0)
    assert caption["mean_latency_ms"] == pytest.approx(np.mean([300, 500, 200]), abs=1e-3)
    assert data["ratings"] == {"wrong": 1, "partly": 1, "right": 2, "unrated": 1}
    bands = {b["confidence"]: b for b in data["calibration"]}
    assert bands["0.9–1.0"]["mean_rating"] == 3.0 and bands["0.9–1.0"]["rated"] == 2
    assert bands["0.2–0.4"]["mean_rating"] == 2.0 and bands["0.2–0.4"]["outputs"] == 2
    assert bands["0.0–0.2"]["mean_rating"] == 1.0
    assert sorted(data["points"]) == [[0.05, 1], [0.3, 2], [0.95, 3], [0.97, 3]]


@pytest.mark.parametrize("code", ["P07", "p-7", "S01_b"])
def test_participant_codes(code):
    assert check_participant(code) == code


@pytest.mark.parametrize("name", ["Jane Doe", "", "élodie", "x" * 40])
def test_names_are_not_codes(name):
    with pytest.raises(TrialError) as caught:
        check_participant(name)
    assert_plain_sentence(str(caught.value), "code", "never a name")


def test_pictures_are_kept_only_when_asked(tmp_path, photo_arrays):
    off = TrialLog(tmp_path / "off", "P01")
    off.output(tab="Caption", result=_result(0.5), text="a cat", delivery="shown", picture=photo_arrays["chelsea"])
    assert not (tmp_path / "off" / "pictures").exists() and read_log(tmp_path / "off")[0][0]["picture"] is None
    on = TrialLog(tmp_path / "on", "P01", keep_pictures=True)
    on.output(tab="Caption", result=_result(0.5), text="a cat", delivery="shown", picture=photo_arrays["chelsea"])
    kept = read_log(tmp_path / "on")[0][0]["picture"]
    assert kept.startswith("pictures/") and (tmp_path / "on" / kept).stat().st_size > 1000


def test_the_trial_commands(cli_env, tmp_path):
    _filled(tmp_path / "log")
    out = stdout_json(studio(cli_env, "trial", "export", tmp_path / "log", "--out", tmp_path / "out"))
    assert out["outputs"] == 5 and (tmp_path / "out" / "outputs.csv").is_file()
    data = stdout_json(studio(cli_env, "trial", "summary", tmp_path / "log"))
    assert data == json.loads(json.dumps(summary(tmp_path / "log")))
    assert_plain_sentence(error_sentence(studio(cli_env, "trial", "summary", tmp_path / "nothing")), "no trial log")
    proc = studio(cli_env, "--trial-log", tmp_path / "log", "--participant", "Jane Doe", "--no-browser", timeout=60)
    assert_plain_sentence(error_sentence(proc), "participant code")


def test_the_tabs_hook_logs_only_while_on_and_says_how_it_was_delivered(tmp_path):
    """`TrialHook`, what every tab logs with: nothing while the log is off; spoken / shown / skipped from the speech
    settings; live streams logged only when their text changes; a log that cannot be written never stops a tab."""
    from types import SimpleNamespace

    from studio.ui.trial_panel import TrialHook

    ctx = SimpleNamespace(trial=None)
    hook = TrialHook(ctx, "Sound & scene")
    assert hook.output(_result(0.9), "Hearing: speech") is None  # off
    ctx.trial = TrialLog(tmp_path / "log", "P03")
    spoken = (True, "server", 150, "en-us", False)
    assert hook.output(_result(0.9), "Speech.", speech=spoken, settings={"fusion": "late"})
    hook.output(_result(0.9), "Speech.", speech=(False, "auto", 175, "en-us", True))
    hook.output(_result(0.9), "Speech.", speech=spoken, skipped=True)
    for text in ("Hearing: speech", "Hearing: speech", "Hearing: music", "Hearing: music"):
        hook.output(_result(0.9), text, session="s1", only_changes=True)
    hook.output(_result(0.9), "Hearing: music", session="s2", only_changes=True)  # another listener
    records = read_log(tmp_path / "log")[0]
    assert [r["delivery"] for r in records] == ["spoken", "shown", "skipped-unchanged", "shown", "shown", "shown"]
    assert [r["text"] for r in records[3:]] == ["Hearing: speech", "Hearing: music", "Hearing: music"]
    assert records[0]["settings"] == {"min_confidence": 0.5, "fusion": "late", "speak": True, "voice": "server",
                                      "rate_wpm": 150}  # fmt: skip
    assert records[0]["tab"] == "Sound & scene" and records[0]["participant"] == "P03"
    (tmp_path / "log" / "trial-log.jsonl").unlink()
    (tmp_path / "log" / "trial-log.jsonl").mkdir()  # the log can no longer be written
    assert hook.output(_result(0.9), "Speech.") is None
