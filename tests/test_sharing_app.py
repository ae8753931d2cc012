"""The app shared with an audience, as a presenter starts it: `studio --shared --allow-path DIR --auth-file FILE
--limit ...` as a separate process on 127.0.0.1, driven through gradio_client and raw HTTP like a visitor's phone.

Refused paths (outside the allowed folder, `..`, symlink escapes) for model folders, folders of examples, fusion
clips and the trial log; logins required; uploads, photos, videos and recordings over their limits refused; a second
request while the first runs refused; a full queue answered at once (gradio's real queue, a toy app with one slot)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
import time

import httpx
import numpy as np
import pytest
from PIL import Image

from studio.sharing import ALREADY_RUNNING, BUSY
from tests.helpers import REPO, assert_plain_sentence, free_port, outputs_and_toasts, text_of
from tests.inputs import drawn_frames, sox, write_clip

LOGIN = ("presenter", "room42")
LIMITS = ["upload_mb=2", "photo_mb=0.2", "video_seconds=2", "audio_seconds=2", "labels=5"]


def _start(args: list[str], env: dict, log_path) -> tuple[subprocess.Popen, str]:
    """Starts `python -m studio ARGS` and waits until it answers HTTP; returns (process, base URL)."""
    port = free_port()
    log = open(log_path, "w")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen(
        [sys.executable, "-m", "studio", "--host", "127.0.0.1", "--port", str(port), "--no-browser", *args],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        assert proc.poll() is None, log_path.read_text()[-3000:]
        try:
            httpx.get(url + "gradio_api/info", timeout=2)
            return proc, url
        except httpx.HTTPError:
            time.sleep(0.3)
    proc.kill()
    raise AssertionError("the app did not start: " + log_path.read_text()[-3000:])


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="module")
def disk(tmp_path_factory, tiny_clip_dir, photos):
    """allowed/ (a model, photos by class, links out of it), outside/ (a model and a photo), the logins file."""
    root = tmp_path_factory.mktemp("sharing")
    allowed, outside = root / "allowed", root / "outside"
    shutil.copytree(tiny_clip_dir, allowed / "models" / "my-clip")
    shutil.copytree(tiny_clip_dir, outside / "their-clip")
    for class_name, names in {"cat": ("chelsea",), "cup": ("coffee",)}.items():
        (allowed / "photos" / class_name).mkdir(parents=True)
        for name in names:
            photos[name].save(allowed / "photos" / class_name / f"{name}.jpg", quality=90)
    photos["astronaut"].save(outside / "private.jpg", quality=90)
    (allowed / "photos" / "cat" / "linked.jpg").symlink_to(outside / "private.jpg")  # a link out of the root
    (allowed / "escape").symlink_to(outside, target_is_directory=True)
    logins = root / "logins.txt"
    logins.write_text(f"# who may use the demo\n{LOGIN[0]}:{LOGIN[1]}\n")
    return {"root": root, "allowed": allowed, "outside": outside, "logins": logins}


@pytest.fixture(scope="module")
def shared_app(disk, cli_env, exported_models_dir, tmp_path_factory):
    """`studio --shared` with a login, one allowed folder and small limits; yields (URL, models dir, log file)."""
    models_dir = tmp_path_factory.mktemp("shared-models") / "exported"
    shutil.copytree(exported_models_dir, models_dir)
    args = ["--shared", "--allow-path", str(disk["allowed"]), "--auth-file", str(disk["logins"])]
    args += ["--models-dir", str(models_dir), *[a for limit in LIMITS for a in ("--limit", limit)]]
    log = disk["root"] / "shared-app.log"
    proc, url = _start(args, cli_env, log)
    yield url, models_dir, log
    _stop(proc)


@pytest.fixture(scope="module")
def client(shared_app):
    from gradio_client import Client

    return Client(shared_app[0], auth=LOGIN, verbose=False)


@pytest.fixture(scope="module")
def small_photo(tmp_path_factory, photos):
    """A photo under the 0.2 MB photo limit."""
    path = tmp_path_factory.mktemp("photo") / "chelsea.jpg"
    photos["chelsea"].resize((96, 96)).save(path)
    return path


@pytest.fixture
def http(shared_app):
    """A logged-in raw HTTP session."""
    with httpx.Client(base_url=shared_app[0], timeout=60) as session:
        assert session.post("login", data={"username": LOGIN[0], "password": LOGIN[1]}).status_code == 200
        yield session


def _refusal(exc_info) -> str:
    return str(exc_info.value)


def test_start_without_login_warns_and_removes_leftovers(cli_env, tmp_path):
    models_dir = tmp_path / "exported"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    leftover = models_dir / "zero-shot" / f".clip.exporting-p{dead.pid}-x"
    leftover.mkdir(parents=True)
    (leftover / "graph.onnx").write_bytes(b"\0" * 1000)
    proc, url = _start(["--shared", "--models-dir", str(models_dir)], cli_env, tmp_path / "app.log")
    try:
        assert httpx.get(url + "gradio_api/info", timeout=10).status_code == 200  # no login asked
    finally:
        _stop(proc)
    said = [line for line in (tmp_path / "app.log").read_text().splitlines() if line.startswith("studio: ")]
    assert len(said) == 1
    assert_plain_sentence(said[0], "shared", "without a login", "anyone on the network", "--auth")
    assert not leftover.exists() and (models_dir / "zero-shot").is_dir()


def test_visitors_must_log_in(shared_app):
    url = shared_app[0]
    assert httpx.get(url + "gradio_api/info", timeout=10).status_code == 401
    assert httpx.post(url + "gradio_api/call/zs_model_state", json={"data": ["/etc"]}, timeout=10).status_code == 401
    assert httpx.post(url + "gradio_api/upload", files={"files": ("a.jpg", b"x")}, timeout=10).status_code == 401
    wrong = httpx.post(url + "login", data={"username": LOGIN[0], "password": "guess"}, timeout=10)
    assert wrong.status_code == 400
    with httpx.Client(base_url=url, timeout=10) as session:
        assert session.post("login", data={"username": LOGIN[0], "password": LOGIN[1]}).status_code == 200
        assert session.get("gradio_api/info").status_code == 200


def test_no_warning_when_visitors_log_in(shared_app):
    assert "without a login" not in shared_app[2].read_text()


@pytest.mark.parametrize(
    "typed",
    ["{outside}/their-clip", "{allowed}/../outside/their-clip", "{allowed}/escape/their-clip", "/etc", "~"],
)
def test_model_folders_outside_the_allowed_folder_are_refused(client, disk, typed, small_photo):
    from gradio_client import handle_file

    name = typed.format(**disk)
    state = client.predict(name, api_name="/zs_model_state")
    assert state.startswith("⚠️ ")
    assert_plain_sentence(state[2:].strip(), "shared", "models come from its list", str(disk["allowed"]))
    settings = ("mug, cat", name, "torch", "cpu", "fp32", "single", "a photo of a {}.", "")
    out, toasts = outputs_and_toasts(client.submit(handle_file(str(small_photo)), *settings, api_name="/classify"))
    assert_plain_sentence(text_of(out[1]), "shared", "models come from its list")
    assert not any("models come from its list" in toast[0] for toast in toasts)  # said once: in the live region


def test_a_model_folder_inside_the_allowed_folder_is_used(client, disk, small_photo):
    from gradio_client import handle_file

    model = str(disk["allowed"] / "models" / "my-clip")
    assert "shared" not in client.predict(model, api_name="/zs_model_state")
    out = client.predict(handle_file(str(small_photo)), "cat, cup", model, "torch", "cpu", "fp32", "single",
                         "a photo of a {}.", "", api_name="/classify")  # fmt: skip
    assert {row["label"] for row in out[0]["confidences"]} == {"cat", "cup"}


def test_folders_of_examples_only_inside_the_allowed_folder(client, disk, shared_app):
    from studio.classifiers.store import ClassifierStore

    model = str(disk["allowed"] / "models" / "my-clip")
    outputs_and_toasts(client.submit("Pets", "cat, cup", model, api_name="/finetune_create"))
    for typed in ("{outside}", "{allowed}/../outside", "{allowed}/escape", "/etc"):
        out, toasts = outputs_and_toasts(
            client.submit("Pets", "cat", typed.format(**disk), api_name="/finetune_add_folder")
        )
        assert_plain_sentence(text_of(out[3]), "shared", "folder of examples", str(disk["allowed"]))
    assert ClassifierStore(shared_app[1]).summary("Pets")["examples"] == 0

    out, _ = outputs_and_toasts(
        client.submit("Pets", "cat", str(disk["allowed"] / "photos"), api_name="/finetune_add_folder")
    )
    assert "Added 2 examples" in text_of(out[3])  # chelsea and coffee; the link to the private photo is skipped
    counts = {c["name"]: c["examples"] for c in ClassifierStore(shared_app[1]).summary("Pets")["classes"]}
    assert counts == {"cat": 1, "cup": 1}


def test_fusion_clips_and_trial_log_folders_only_inside_the_allowed_folder(client, disk):
    status, _ = client.predict(str(disk["outside"]), "my clips", 0.5, api_name="/teach_fusion")
    assert_plain_sentence(text_of(status), "shared", "folder of labelled clips")
    announced, _ = client.predict(True, str(disk["outside"]), "P07", False, api_name="/trial_switch")
    assert_plain_sentence(text_of(announced), "shared", "trial log folder")
    assert not (disk["outside"] / "trial-log.jsonl").exists()
    announced, _ = client.predict(True, str(disk["allowed"] / "trial"), "P07", False, api_name="/trial_switch")
    assert "Trial log on for participant P07" in text_of(announced)
    client.predict(False, str(disk["allowed"] / "trial"), "P07", False, api_name="/trial_switch")


def test_upload_over_the_limit_is_refused(http):
    answer = http.post("gradio_api/upload", files={"files": ("big.mp4", b"\0" * 3_000_000)})
    assert answer.status_code == 413
    assert_plain_sentence(answer.text, "maximum allowed size")
    small = http.post("gradio_api/upload", files={"files": ("small.mp4", b"\0" * 1000)})
    assert small.status_code == 200


def test_photos_videos_recordings_and_labels_over_their_limits_are_refused(client, disk, tmp_path, small_photo):
    from gradio_client import handle_file

    model = str(disk["allowed"] / "models" / "my-clip")
    noise = tmp_path / "noise.png"  # about 0.7 MB: under the upload limit, over the photo limit
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (480, 480, 3), dtype=np.uint8)).save(noise)
    with pytest.raises(Exception) as refused:  # noqa: PT011
        client.predict(handle_file(str(noise)), "cat, cup", model, "torch", "cpu", "fp32", "single",
                       "a photo of a {}.", "", api_name="/classify")  # fmt: skip
    assert_plain_sentence(_refusal(refused), "photo", "0.2 MB")

    clip = write_clip(tmp_path / "three-seconds.mp4", drawn_frames(30), fps=10)
    with pytest.raises(Exception) as refused:  # noqa: PT011
        client.predict(handle_file(str(clip)), 2.0, 2.0, labels="", api_name="/classify_video")
    assert_plain_sentence(_refusal(refused), "video lasts 3 seconds", "up to 2 seconds")

    sound = tmp_path / "three-seconds.wav"
    sox("-n", "-r", "16000", "-c", "1", str(sound), "synth", "3", "sine", "440")
    with pytest.raises(Exception) as refused:  # noqa: PT011
        client.predict(handle_file(str(sound)), None, None, head_name=None, api_name="/recognise")
    assert_plain_sentence(_refusal(refused), "recording lasts 3 seconds")

    out, _ = outputs_and_toasts(client.submit(handle_file(str(small_photo)), ", ".join(f"thing {i}" for i in range(6)),
                                              model, "torch", "cpu", "fp32", "single", "a photo of a {}.", "",
                                              api_name="/classify"))  # fmt: skip
    assert_plain_sentence(text_of(out[1]), "6 labels", "at most 5")


def test_a_second_request_while_the_first_runs_is_refused(http, disk, client):
    copy = disk["allowed"] / "models" / "to-export"
    shutil.copytree(disk["allowed"] / "models" / "my-clip", copy)
    first = http.post("gradio_api/call/ft_export_model", json={"data": [str(copy)]})
    assert first.status_code == 200, first.text
    second = http.post("gradio_api/call/ft_export_model", json={"data": [str(copy)]})
    assert second.status_code == 503
    assert second.json()["detail"] == ALREADY_RUNNING
    assert_plain_sentence(ALREADY_RUNNING, "already", "wait")
    with http.stream("GET", f"gradio_api/call/ft_export_model/{first.json()['event_id']}") as events:
        done = [line for line in events.iter_lines() if line.startswith("event: ")]
    assert done[-1] == "event: complete"  # the first one finished; the app kept serving
    assert "exported to ONNX" in client.predict(str(copy), api_name="/ft_model_state")


def test_a_full_queue_is_answered_at_once():
    """gradio's real queue with one slot per event (a toy app, so the test owns the timing): the request beyond
    `queue_per_event` waiting ones is answered "busy" at once, through the HTTP API and through gradio_client."""
    import gradio as gr
    from gradio_client import Client
    from gradio_client.exceptions import AppError  # noqa: F401 - the client's errors

    from studio.sharing import Limits, SharingPolicy
    from studio.ui.guard import guard_events, limit_queue

    release = threading.Event()

    def slow(text):
        release.wait(30)
        return text

    with gr.Blocks() as demo:
        box = gr.Textbox()
        box.submit(slow, box, box, api_name="slow", concurrency_limit=1)
    policy = SharingPolicy(shared=True, limits=Limits(queue_per_event=1, per_visitor=5))
    guard_events(demo, policy)
    demo.queue()
    limit_queue(demo, policy)
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        url = f"http://127.0.0.1:{port}/"
        running = httpx.post(url + "gradio_api/call/slow", json={"data": ["one"]}, timeout=10)
        deadline = time.monotonic() + 20
        while not [j for j in demo._queue.active_jobs if j] and time.monotonic() < deadline:
            time.sleep(0.05)
        waiting = httpx.post(url + "gradio_api/call/slow", json={"data": ["two"]}, timeout=10)
        started = time.monotonic()
        busy = httpx.post(url + "gradio_api/call/slow", json={"data": ["three"]}, timeout=10)
        assert (running.status_code, waiting.status_code, busy.status_code) == (200, 200, 503)
        assert busy.json()["detail"] == BUSY and time.monotonic() - started < 5
        assert_plain_sentence(BUSY, "busy", "try again in a moment")
        with pytest.raises(Exception, match="(?i)queue is full"):  # gradio_client words a 503 its own way
            Client(url, verbose=False).predict("four", api_name="/slow")
        release.set()
        for answer in (running, waiting):
            with httpx.stream("GET", url + f"gradio_api/call/slow/{answer.json()['event_id']}", timeout=30) as ev:
                assert [ln for ln in ev.iter_lines() if ln.startswith("event: ")][-1] == "event: complete"
        assert Client(url, verbose=False).predict("five", api_name="/slow") == "five"  # room again
    finally:
        release.set()
        demo.close()
