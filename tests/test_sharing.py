"""Shared mode's path policy, logins and limits (studio/sharing.py), and the temporaries a killed export leaves behind
(studio/atomic.py `remove_leftovers`), measured with a real `studio export` stopped by SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from studio.atomic import STALE_AFTER_S, directory_replaced_on_success, remove_leftovers, temporary_prefix
from studio.errors import StudioError
from studio.sharing import Limits, RefusedError, SharingPolicy, is_loopback, parse_limits, parse_logins
from tests.helpers import REPO, assert_plain_sentence

DEFAULT_CLIP = "openai/clip-vit-base-patch32"


@pytest.fixture
def disk(tmp_path):
    """allowed/ (with photos/ and a link to outside/), outside/ (a secret), models/ (the models directory)."""
    allowed, outside, models = tmp_path / "allowed", tmp_path / "outside", tmp_path / "models"
    for folder in (allowed / "photos" / "cat", outside, models / "my-clip"):
        folder.mkdir(parents=True)
    (outside / "secret.txt").write_text("not for visitors")
    (allowed / "escape").symlink_to(outside, target_is_directory=True)
    (allowed / "photos" / "cat" / "escaped.jpg").symlink_to(outside / "secret.txt")
    return {"allowed": allowed, "outside": outside, "models": models, "tmp": tmp_path}


@pytest.fixture
def shared(disk):
    return SharingPolicy.for_app("127.0.0.1", shared=True, allow_paths=[disk["allowed"]], models_dir=disk["models"])


@pytest.mark.parametrize(
    ("host", "is_shared"),
    [("127.0.0.1", False), ("localhost", False), ("::1", False), ("127.0.0.2", False), ("0.0.0.0", True),
     ("::", True), ("192.168.1.20", True), ("studio.example.org", True)],
)  # fmt: skip
def test_shared_mode_is_on_beyond_loopback(host, is_shared):
    assert is_loopback(host) is not is_shared
    assert SharingPolicy.for_app(host).shared is is_shared
    assert SharingPolicy.for_app(host, shared=True).shared  # --shared forces it anywhere


def test_folders_inside_the_allowed_roots_are_used_resolved(shared, disk):
    photos = disk["allowed"] / "photos"
    assert shared.check_folder(str(photos), "folder of examples") == photos.resolve()
    assert shared.check_folder(f"{disk['allowed']}/photos/cat/../cat", "folder") == (photos / "cat").resolve()
    assert shared.check_folder(str(disk["allowed"]), "folder") == disk["allowed"].resolve()  # the root itself


@pytest.mark.parametrize(
    "typed",
    [
        "{outside}",  # absolute, outside
        "{allowed}/../outside",  # `..` out of the root
        "{allowed}/photos/../../outside",
        "{allowed}/escape",  # a symlink inside the root to a folder outside
        "{allowed}/escape/../escape",
        "{allowed}-sibling",  # a name that only starts like the root
        "/",
        "/etc",
        "~",
        "photos",  # relative: resolved against the server's working folder, outside
        "..",
        "",
        "a\0b",
    ],
)
def test_folders_outside_the_allowed_roots_are_refused_in_a_sentence(shared, disk, typed, monkeypatch):
    monkeypatch.chdir(disk["tmp"])
    text = typed.format(allowed=disk["allowed"], outside=disk["outside"])
    with pytest.raises(RefusedError) as refused:
        shared.check_folder(text, "folder of examples")
    sentence = str(refused.value)
    assert_plain_sentence(sentence, "shared", "folder of examples", str(disk["allowed"].resolve()))
    assert str(disk["outside"]) not in sentence.replace(text, "")  # says nothing about what lies outside


def test_a_relative_path_is_allowed_when_it_resolves_inside(shared, disk, monkeypatch):
    monkeypatch.chdir(disk["allowed"])
    assert shared.check_folder("photos", "folder") == (disk["allowed"] / "photos").resolve()


def test_without_allowed_folders_a_shared_app_opens_none(disk):
    policy = SharingPolicy.for_app("0.0.0.0")
    with pytest.raises(RefusedError) as refused:
        policy.check_folder(str(disk["allowed"]), "folder of examples")
    assert_plain_sentence(str(refused.value), "does not open folders", "--allow-path")


def test_a_local_app_refuses_nothing(disk):
    local = SharingPolicy.for_app("127.0.0.1")
    assert local.check_folder(str(disk["outside"]), "folder") == disk["outside"]
    local.check_model("/etc", "zero-shot")
    local.check_labels(["x" * 500] * 500)
    local.check_duration(10**6, "video")


def test_models_come_from_the_registry_and_allowed_roots(shared, disk):
    shared.check_model(DEFAULT_CLIP, "zero-shot")  # a registry row
    shared.check_model(None, "zero-shot")  # the task's default
    shared.check_model(str(disk["models"] / "my-clip"), "zero-shot")  # in the models directory
    shared.check_model(str(disk["allowed"] / "photos"), "zero-shot")  # under --allow-path (resolve() judges it)
    for name in (str(disk["outside"]), f"{disk['allowed']}/escape", f"{disk['models']}/../outside", "someone/else"):
        with pytest.raises(RefusedError) as refused:
            shared.check_model(name, "zero-shot")
        assert_plain_sentence(str(refused.value), "shared", "models come from its list")


def test_a_picked_symlink_named_like_a_registry_row_is_judged_as_a_path(shared, disk, monkeypatch):
    monkeypatch.chdir(disk["tmp"])
    fake = disk["tmp"] / DEFAULT_CLIP
    fake.parent.mkdir(parents=True)
    fake.symlink_to(disk["outside"], target_is_directory=True)  # resolve() would open this folder, not the hub id
    with pytest.raises(RefusedError):
        shared.check_model(DEFAULT_CLIP, "zero-shot")


def test_an_allowed_folder_that_does_not_exist_is_refused(tmp_path):
    with pytest.raises(RefusedError) as refused:
        SharingPolicy.for_app("0.0.0.0", allow_paths=[tmp_path / "nowhere"])
    assert_plain_sentence(str(refused.value), "--allow-path", "no folder")


def test_limits_say_which_limit(shared):
    shared.check_labels(["mug", "keys"])
    for call, words in (
        (lambda: shared.check_labels([f"label {i}" for i in range(51)]), ("51 labels", "at most 50")),
        (lambda: shared.check_labels(["x" * 101, "y"]), ("101 characters", "100")),
        (lambda: shared.check_text("x" * 10_001, "question"), ("question", "10,001")),
        (lambda: shared.check_duration(601, "video"), ("video", "10 minutes", "shorter")),
        (lambda: shared.check_duration(90 * 60, "audio"), ("recording", "90 minutes")),
    ):
        with pytest.raises(RefusedError) as refused:
            call()
        assert_plain_sentence(str(refused.value), *words)
    shared.check_duration(None, "video")  # unreadable: the reader says why


def test_photo_limit(shared, tmp_path):
    small, big = tmp_path / "small.jpg", tmp_path / "big.jpg"
    small.write_bytes(b"\xff" * 1000)
    big.write_bytes(b"\xff" * int(shared.limits.photo_mb * 1e6 + 1))
    shared.check_photo(small)
    with pytest.raises(RefusedError) as refused:
        shared.check_photo(big)
    assert_plain_sentence(str(refused.value), "photo", "25 MB")


def test_logins_from_options_and_a_file(tmp_path):
    file = tmp_path / "logins.txt"
    file.write_text("# the room\npresenter:room42\n\nguest: with:colon \n")
    assert parse_logins(["a:b"], file) == [("a", "b"), ("presenter", "room42"), ("guest", " with:colon")]
    for pairs, words in ((["nopassword"], ("USER:PASSWORD",)), ([":x"], ("USER:PASSWORD",))):
        with pytest.raises(StudioError) as refused:
            parse_logins(pairs)
        assert_plain_sentence(str(refused.value), *words)
    with pytest.raises(StudioError) as refused:
        parse_logins([], tmp_path / "missing.txt")
    assert_plain_sentence(str(refused.value), "cannot be read")


def test_limits_from_options():
    limits = parse_limits(["photo_mb=2.5", "labels=3", "queue-per-event=1"])
    assert (limits.photo_mb, limits.labels, limits.queue_per_event, limits.upload_mb) == (2.5, 3, 1, Limits().upload_mb)
    for bad in ("pixels=3", "labels=-1", "labels=many", "photo_mb=inf", "photo_mb=nan"):
        with pytest.raises(StudioError) as refused:
            parse_limits([bad])
        assert_plain_sentence(str(refused.value), "--limit")


# Temporaries left behind -------------------------------------------------------------------------------------------


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_leftovers_of_dead_processes_are_removed_and_the_rest_kept(tmp_path):
    root = tmp_path / "exported"
    dead, alive = _dead_pid(), os.getppid()
    paths = {
        "dead export": root / "zero-shot" / f".my-clip.exporting-p{dead}-abc",
        "dead classifier version": root / "classifiers" / "mugs" / f".v2.saving-p{dead}-x",
        "dead import": root / "classifiers" / f".importing-p{dead}-y",
        "dead index": root / "indexes" / f".photos.indexing-p{dead}-z",
        "old unnamed": root / "zero-shot" / ".clip.exporting-oldstyle",
        "running export": root / "zero-shot" / f".other.exporting-p{alive}-q",
        "this process": root / "zero-shot" / f".mine.exporting-p{os.getpid()}-q",
        "fresh unnamed": root / "zero-shot" / ".new.exporting-justnow",
        "a model": root / "zero-shot" / "my-clip",
        "hidden, not ours": root / "openai" / "clip" / ".cache",
    }
    for path in paths.values():
        path.mkdir(parents=True)
        (path / "graph.onnx").write_bytes(b"x" * 100)
    dead_file = root / "fusion-heads" / f".head.json.writing-p{dead}-r.tmp"
    dead_file.parent.mkdir()
    dead_file.write_text("{")
    long_ago = time.time() - STALE_AFTER_S - 60
    for path in (paths["old unnamed"], paths["old unnamed"] / "graph.onnx"):
        os.utime(path, (long_ago, long_ago))

    removed = set(remove_leftovers(root))

    gone = {"dead export", "dead classifier version", "dead import", "dead index", "old unnamed"}
    assert removed == {paths[k] for k in gone} | {dead_file}
    assert all(not paths[k].exists() for k in gone) and not dead_file.exists()
    assert all(paths[k].is_dir() for k in set(paths) - gone)


def test_temporaries_carry_the_writers_process_id(tmp_path):
    with directory_replaced_on_success(tmp_path / "export", "exporting") as tmp:
        assert tmp.name.startswith(temporary_prefix("export", "exporting"))
        assert f"-p{os.getpid()}-" in tmp.name
        assert remove_leftovers(tmp_path) == []  # its own temporaries are never taken for leftovers
    assert (tmp_path / "export").is_dir()


def test_an_export_killed_with_sigkill_leaves_its_temporary_folder_which_start_removes(
    cli_env, tiny_clip_dir, tmp_path
):
    """Measured: SIGKILL runs no `finally`, so the export's `.<name>.exporting-p<pid>-*` folder stays; the app's start
    (`remove_leftovers`, called by `launch`) removes it."""
    out = tmp_path / "exported"
    proc = subprocess.Popen(
        [sys.executable, "-m", "studio", "export", "zero-shot", "--model", str(tiny_clip_dir), "--out", str(out)],
        cwd=REPO,
        env=cli_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 240
    temporary = []
    while not temporary and proc.poll() is None and time.monotonic() < deadline:
        temporary = [p for p in out.glob("zero-shot/.*") if ".exporting-" in p.name and any(p.iterdir())]
        time.sleep(0.05)
    assert temporary, "the export finished or failed before a graph was written"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    left = [p for p in out.glob("zero-shot/.*") if ".exporting-" in p.name]
    assert left == temporary and f"-p{proc.pid}-" in left[0].name  # left behind, named after the killed process
    size = sum(f.stat().st_size for f in left[0].rglob("*") if f.is_file())
    print(f"SIGKILL left {left[0].name} behind: {size / 1e6:.2f} MB in {len(list(left[0].rglob('*')))} files")
    assert size > 0
    assert remove_leftovers(out) == left
    assert not left[0].exists()
    assert not [p for p in (out / "zero-shot").iterdir()], "no finished export either: it was killed"


# The guard every handler of the app is wrapped in -----------------------------------------------------------------


def test_guarded_handlers_keep_their_kind_and_say_sentences():
    import asyncio
    import inspect

    import gradio as gr

    from studio.ui.guard import UNEXPECTED, guarded

    def plain(x, progress=gr.Progress()):
        if x == "ours":
            raise StudioError("That picture is empty.")
        if x == "bug":
            raise KeyError("internal")
        return x

    def generator(x):
        yield plain(x)

    async def coroutine(x):
        return plain(x)

    async def async_generator(x):
        yield plain(x)

    checked = []

    def check(args, kwargs):
        checked.append(args)
        if args and args[0] == "refused":
            raise RefusedError("That video lasts 11 minutes; this shared app takes videos of up to 10 minutes.")

    def run(fn, x):
        result = fn(x)
        if inspect.isgenerator(result):
            return list(result)[0]
        if inspect.isasyncgen(result):
            return asyncio.run(result.__anext__())
        if inspect.iscoroutine(result):
            return asyncio.run(result)
        return result

    kinds = (
        (plain, inspect.isfunction),
        (generator, inspect.isgeneratorfunction),
        (coroutine, inspect.iscoroutinefunction),
        (async_generator, inspect.isasyncgenfunction),
    )
    for fn, is_kind in kinds:
        wrapped = guarded(fn, check)
        assert is_kind(wrapped) and inspect.signature(wrapped) == inspect.signature(fn)  # gradio calls it as before
        assert run(wrapped, "fine") == "fine"
        for given, said in (("ours", "That picture is empty."), ("bug", UNEXPECTED), ("refused", "11 minutes")):
            with pytest.raises(gr.Error) as error:
                run(wrapped, given)
            assert said in error.value.message
            assert_plain_sentence(error.value.message)
    assert len(checked) == 16  # the check ran before every call


def test_a_classifier_naming_a_model_outside_the_allowed_folders_is_refused(shared, disk, photos):
    """A classifier imported from a zip names its own model: training and fine-tuning it check that model like a
    typed one, before anything is loaded."""
    from studio.services.base import LoadedModels
    from studio.services.classifiers import ClassifierService

    service = ClassifierService(LoadedModels(disk["models"], sharing=shared))
    service.store.create("Pets", "cat, cup", str(disk["outside"]))  # as an imported zip would have it
    for class_name, photo in (("cat", "chelsea"), ("cup", "coffee")):
        service.store.add_examples("Pets", class_name, [photos[photo], photos[photo].rotate(90)])
    for call in (lambda: service.train_run("Pets"), lambda: service.fine_tune("Pets")):
        with pytest.raises(RefusedError) as refused:
            call()
        assert_plain_sentence(str(refused.value), "shared", "models come from its list")
