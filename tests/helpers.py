"""Plain helpers the test modules share (their fixtures are in conftest.py and tests/fixtures/).

- What a user is told: `assert_plain_sentence`, `text_of` (the words in a live region's HTML).
- Input files: `write_test_files` (photos as files and files that are no usable input), `sha256`, speech WAVs.
- The launched app: `launched_app` (what app fixtures yield from); through gradio_client: `outputs_and_toasts`,
  `assert_missing_model_state`.
- The `studio` command as a separate process: `studio`, `stdout_json`, `error_sentence`.
- Comparisons with transformers: `assert_preprocessing_matches`, `pipeline_top_answers`.
- The `studio export` command's result: `read_verified_export`.
- The app in Debian chromium with playwright: `CHROMIUM_ARGS`, `launch_chromium`, `open_page`,
  `screenshot_on_failure`, `toggle_accordion`, `within`, `assert_speech_panel_named`.
"""

from __future__ import annotations

import contextlib
import hashlib
import html
import json
import re
import subprocess
import sys
import wave
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

REPO = Path(__file__).resolve().parents[1]
HAS_GPU = any(Path("/dev").glob("nvidia[0-9]*"))
SKIPPED = {"__type__": "update"}  # what gradio_client returns for an output the handler left unchanged (gr.skip())


# What a user is told ----------------------------------------------------------------------------------------------


def assert_plain_sentence(sentence: str, *key_words: str) -> None:
    """`sentence` is one plain sentence holding every key word (any case), with no traceback jargon."""
    assert sentence, "no sentence was shown"
    for word in key_words:
        assert word.lower() in sentence.lower(), f"{word!r} not in {sentence!r}"
    for jargon in ("Traceback", "Exception", "Error:", "errno", 'File "'):
        assert jargon not in sentence, f"{jargon!r} in {sentence!r}"
    assert sentence.rstrip()[-1] in ".!?", f"not a whole sentence: {sentence!r}"


def text_of(announce_html: str) -> str:
    """The words in the live region's HTML."""
    return html.unescape(re.sub(r"<[^>]+>", "", announce_html)).strip()


# Files ------------------------------------------------------------------------------------------------------------


def write_test_files(directory: Path, photos: dict, *unusable: str) -> dict[str, Path]:
    """Writes each photo as `<name>.jpg`, and the unusable inputs named in `unusable`; returns {key: path}.

    The unusable inputs: "empty" (an empty empty.jpg), "corrupt" (chelsea's JPEG cut off after its headers as
    corrupt.jpg), "text" (a shopping list named notes.png) and "not_model" (holiday-photos, a folder that is no model).
    """
    out = {}
    for name, photo in photos.items():
        out[name] = directory / f"{name}.jpg"
        photo.save(out[name], quality=90)
    if "empty" in unusable:
        out["empty"] = directory / "empty.jpg"
        out["empty"].write_bytes(b"")
    if "corrupt" in unusable:
        out["corrupt"] = directory / "corrupt.jpg"
        out["corrupt"].write_bytes(out["chelsea"].read_bytes()[:300])  # a JPEG cut off after its headers
    if "text" in unusable:
        out["text"] = directory / "notes.png"
        out["text"].write_text("shopping list: milk, eggs, coffee\n")
    if "not_model" in unusable:
        out["not_model"] = directory / "holiday-photos"
        out["not_model"].mkdir()
        (out["not_model"] / "readme.txt").write_text("not a model")
    return out


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def wav_facts(path) -> dict:
    """Channels, sample width, seconds and peak level of a WAV file (fails if it is not one)."""
    with wave.open(str(path), "rb") as w:
        channels, width, rate, frames = w.getnchannels(), w.getsampwidth(), w.getframerate(), w.getnframes()
        samples = np.frombuffer(w.readframes(frames), dtype="<i2") if width == 2 else np.zeros(0)
    return {
        "channels": channels,
        "width": width,
        "seconds": frames / rate,
        "peak": int(np.abs(samples.astype(np.int32)).max()) if samples.size else 0,
    }


def assert_speech_wav(path) -> dict:
    """`path` is audible mono 16-bit speech longer than half a second; returns its `wav_facts`."""
    facts = wav_facts(path)
    assert facts["channels"] == 1 and facts["width"] == 2, facts  # mono 16-bit
    assert facts["seconds"] > 0.5, facts
    assert facts["peak"] > 1000, f"silent speech: {facts}"
    return facts


# The launched app, and through gradio_client ----------------------------------------------------------------------


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launched_app(tmp_path_factory, name: str, exports: Path, models: dict[str, Path], **options):
    """Launches the real app on 127.0.0.1 with `models` ({task: model folder}) preselected (and more `launch`
    options, e.g. shared=True); stops it when resumed.

    Its models directory is a fresh copy of `exports`, so tests may export or damage files in it. Module-scoped app
    fixtures `yield from` this.

    Yields:
        (base URL, models directory)
    """
    import shutil

    from studio.ui.app import launch

    models_dir = tmp_path_factory.mktemp(name) / "exported"
    shutil.copytree(exports, models_dir)
    port = free_port()
    demo = launch(
        host="127.0.0.1",
        port=port,
        models_dir=models_dir,
        open_browser=False,
        models={task: str(model) for task, model in models.items()},
        block=False,
        **options,
    )
    try:
        yield f"http://127.0.0.1:{port}/", models_dir
    finally:
        demo.close()


def outputs_and_toasts(job, timeout: float = 120) -> tuple:
    """A submitted job's outputs and the (message, level) toasts its handler raised."""
    outputs = job.result(timeout=timeout)
    toasts = []
    while not job.communicator.updates.empty():
        update = job.communicator.updates.get_nowait()
        if getattr(update, "log", None):
            toasts.append(update.log)
    return outputs, toasts


def assert_missing_model_state(state: str, models_dir: Path, hub_id: str) -> None:
    """A model panel's state for a registry model that is not on this machine: missing, and where to put it."""
    assert "missing" in state
    assert "downloaded on first use" in state and "internet" in state
    assert str(models_dir / hub_id) in state  # where to copy it by hand
    assert "exported to ONNX" not in state


# The `studio` command (the `cli_env` fixture is the environment it runs in) ----------------------------------------


def studio(env: dict[str, str], *args, timeout: float = 300) -> subprocess.CompletedProcess:
    """Runs `python -m studio ARGS` from the checkout as a separate process, capturing its output as text."""
    return subprocess.run(
        [sys.executable, "-m", "studio", *map(str, args)],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def stdout_json(proc: subprocess.CompletedProcess) -> dict:
    """The JSON a successful command printed."""
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stderr[-3000:]}"
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    return json.loads(proc.stdout)


def error_sentence(proc: subprocess.CompletedProcess) -> str:
    """The one `studio: ...` sentence on stderr of a failed command (progress bars drawn before it are dropped)."""
    assert proc.returncode == 2, f"exit {proc.returncode}\nstdout: {proc.stdout[-2000:]}\nstderr: {proc.stderr[-3000:]}"
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert proc.stdout == "", "a failed command printed JSON"
    lines = [ln.strip() for ln in re.split(r"[\r\n]", proc.stderr) if ln.strip().startswith("studio: ")]
    assert len(lines) == 1, proc.stderr[-3000:]
    return lines[0][len("studio: ") :]


def read_verified_export(
    printed: dict, out_dir: Path, task: str, family: str, source: Path, graphs: set[str]
) -> tuple[Path, dict]:
    """What `studio export TASK --model SOURCE --out OUT_DIR` printed: a new export of `family` under OUT_DIR/TASK whose
    manifest names the source folder and `graphs`, with each file's digest and PyTorch parity within tolerance, and no
    temporary folder left beside it. Returns (export directory, manifest)."""
    directory = Path(printed["export_dir"])
    assert directory.parent == out_dir.resolve() / task
    manifest = json.loads((directory / "manifest.json").read_text())
    assert printed["manifest"] == manifest
    assert manifest["task"] == task and manifest["family"] == family
    assert manifest["source"]["kind"] == "directory" and manifest["source"]["path"] == str(source)
    assert set(manifest["graphs"]) == graphs
    for name, entry in manifest["graphs"].items():
        assert entry["sha256"], name
        for file_name, digest in entry["sha256"].items():
            assert sha256(directory / file_name) == digest, file_name
        assert 0 <= entry["max_abs_diff"] <= entry["tolerance"]["atol"], (name, entry)
    assert not [p for p in directory.parent.iterdir() if p.name.startswith(".")], "temporary folders left behind"
    return directory, manifest


# Comparisons with transformers ------------------------------------------------------------------------------------


def assert_preprocessing_matches(ours, processor, photos) -> None:
    """Our image preprocessing gives the transformers image processor's pixel values for every photo."""
    from studio.media.image import load_image

    for photo in photos:
        expected = processor(images=[photo], return_tensors="np")["pixel_values"][0]
        np.testing.assert_allclose(ours(load_image(photo)), expected, atol=1e-5)


def pipeline_top_answers(model, logits, top_k=5):
    """The visual-question-answering pipeline's postprocess (transformers 4.x): sigmoid, then topk."""
    import torch

    scores, ids = torch.from_numpy(logits).sigmoid()[0].topk(min(top_k, model.config.num_labels))
    return [{"score": s, "answer": model.config.id2label[i]} for s, i in zip(scores.tolist(), ids.tolist())]


# The app in Debian chromium (the `chromium`, `pw`, `browser` and `artifacts` fixtures launch it) -------------------

ARTIFACTS = REPO / "test-artifacts"
WAIT_MS = 30_000  # generous: the machine may have 2 cores and other tests running

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

# The live views' timing line while a camera streams.
DELAY = re.compile(r"Delay (\d+) ms from frame to result \(median of the last (\d+) frames?\)")


def launch_chromium(pw, chromium: str, *, fake_video: Path | None = None, fake_audio: Path | None = None) -> Browser:
    """Chromium with `CHROMIUM_ARGS`; given a file, its fake camera or microphone plays it (no permission prompt)."""
    args = list(CHROMIUM_ARGS)
    if fake_video is not None or fake_audio is not None:
        args += ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"]
    if fake_video is not None:
        args.append(f"--use-file-for-fake-video-capture={fake_video}")
    if fake_audio is not None:
        args.append(f"--use-file-for-fake-audio-capture={fake_audio}")
    return pw.chromium.launch(executable_path=chromium, args=args)


def open_page(browser: Browser, url: str, height: int = 1000) -> Page:
    """A fresh page on `url` in its own context, 1280 pixels wide, allowed the camera and the microphone."""
    context = browser.new_context(permissions=["camera", "microphone"], viewport={"width": 1280, "height": height})
    context.set_default_timeout(WAIT_MS)
    page = context.new_page()
    page.goto(url)
    return page


@contextlib.contextmanager
def screenshot_on_failure(page: Page, path: Path):
    """Saves a screenshot of the page as it was when an assertion failed."""
    try:
        yield
    except BaseException:
        with contextlib.suppress(Exception):
            page.screenshot(path=str(path), full_page=True)
        raise


def toggle_accordion(page: Page, title: str) -> None:
    """Opens or closes the accordion with exactly this title ("Speech" is not "Speech-to-text model")."""
    page.get_by_role("button", name=re.compile(rf"^{re.escape(title)}\s*[▼▲]?$")).filter(visible=True).click()


def within(locator, element_id: str) -> None:
    """The one visible control the locator finds lies inside the element with this id."""
    from playwright.sync_api import expect

    locator = locator.filter(visible=True)  # other tabs, hidden, may have controls of the same name
    expect(locator).to_have_count(1)
    expect(locator).to_be_visible()
    assert locator.evaluate(f"e => e.closest('#{element_id}') !== null"), element_id


def assert_speech_panel_named(page: Page, prefix: str, speak_label: str):
    """The open Speech panel (studio/ui/speech_panel.py) of the tab whose element ids start with `prefix`: every control
    found by its accessible name inside the element we mean. Returns the browser-voice <select>'s locator."""
    from playwright.sync_api import expect

    from studio.ui.speech_panel import SOURCE_CHOICES

    within(page.get_by_role("checkbox", name=speak_label), f"{prefix}-speak")
    for name, _ in SOURCE_CHOICES:
        within(page.get_by_role("radio", name=name, exact=True), f"{prefix}-voice-source")
    within(page.get_by_role("slider", name="Speaking rate (words per minute)"), f"{prefix}-rate")
    within(page.get_by_role("combobox", name="Server voice", exact=True), f"{prefix}-server-voice")
    browser_voice = page.get_by_label("Browser voice", exact=True).filter(visible=True)
    expect(browser_voice).to_have_count(1)
    expect(browser_voice).to_have_id(f"{prefix}-browser-voice")
    return browser_voice
