"""Fusion: late fusion's arithmetic, the labels in play, one modality missing, and the trained fusion heads (training,
numpy prediction against the PyTorch module they were trained as, held-out comparison, atomic saving with checksums).

The picture side is checked against the zero-shot task run directly on the same frames; the sound side against the
sound task run directly on the same recording (both are compared with transformers in their own test modules).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from studio.fusion.heads import (
    ClipExample,
    CorruptFusionHeadError,
    FusionHeadError,
    collect_clips,
    late_fusion,
    train_and_compare,
    train_head,
)
from studio.fusion.store import find_head, list_heads, load_head, save_head
from studio.heldout import stratified_split
from studio.tasks.av_events import AvEvents, NothingToRecognizeError, restricted_distribution
from tests.helpers import assert_plain_sentence

LABELS = "dog barking, door knock, applause"


@pytest.fixture(scope="module")
def tasks(tiny_ast_dir, tiny_clap_dir, tiny_clip_dir, sound_exports_dir):
    from studio.tasks.sound_events import SoundEventsTask
    from studio.tasks.zero_shot import ZeroShotTask

    return {
        "ast": SoundEventsTask.load(str(tiny_ast_dir), sound_exports_dir, backend="onnx", device="cpu"),
        "clap": SoundEventsTask.load(str(tiny_clap_dir), sound_exports_dir, backend="onnx", device="cpu"),
        "clip": ZeroShotTask.load(str(tiny_clip_dir), sound_exports_dir, backend="torch", device="cpu"),
    }


@pytest.fixture(scope="module")
def photo(tmp_path_factory, photos):
    path = tmp_path_factory.mktemp("av-photo") / "coffee.jpg"
    photos["coffee"].save(path)
    return path


# Late fusion ---------------------------------------------------------------------------------------------------------


def test_late_fusion_arithmetic():
    audio, picture = np.array([0.7, 0.2, 0.1]), np.array([0.1, 0.3, 0.6])
    np.testing.assert_allclose(late_fusion(audio, picture, 0.25), 0.25 * audio + 0.75 * picture)
    np.testing.assert_allclose(late_fusion(audio, picture, 1.0), audio)
    np.testing.assert_allclose(late_fusion(audio, picture, 0.0), picture)
    assert late_fusion(audio, picture, 0.4).sum() == pytest.approx(1.0)
    with pytest.raises(FusionHeadError):
        late_fusion(audio, picture, 1.5)


def test_restricted_distribution():
    scores = np.array([0.9, 0.5, 0.1, 0.3])
    labels = ("Speech", "Dog", "Knock", "Music")
    np.testing.assert_allclose(restricted_distribution(scores, labels, ("dog", "Knock")), [5 / 6, 1 / 6])
    np.testing.assert_allclose(restricted_distribution(scores, labels, ("Dog", "whistle")), [1.0, 0.0])
    np.testing.assert_allclose(restricted_distribution(scores, labels, ("whistle", "kettle")), [0.5, 0.5])


@pytest.mark.parametrize("weight", [0.0, 0.3, 1.0])
def test_clap_and_picture_fused(tasks, sounds, photo, weight):
    """CLAP and CLIP over the typed labels; fused = w * sound + (1 - w) * picture, contributions add up."""
    av = AvEvents(tasks["clap"], tasks["clip"])
    result = av(audio=sounds["knocks"], image=photo, labels=LABELS, audio_weight=weight)
    labels = tuple(x.strip() for x in LABELS.split(","))
    assert result.labels == labels and result.fusion == "late"
    sound = tasks["clap"](sounds["knocks"], LABELS)
    np.testing.assert_allclose(result.audio_probs, sound.mean_scores())
    zs = tasks["clip"](str(photo), list(labels))
    picture = {r["label"]: r["score"] for r in zs.labels}
    np.testing.assert_allclose(result.picture.probs, [picture[x] for x in labels], atol=1e-6)
    np.testing.assert_allclose(result.fused, weight * result.audio_probs + (1 - weight) * result.picture.probs)
    for row in result.ranking():
        assert row["audio"] + row["picture"] == pytest.approx(row["score"])
    assert sum(r["score"] for r in result.ranking()) == pytest.approx(1.0)
    data = result.as_dict()
    assert data["sound"]["events"] == sound.events() and data["picture_frames"] == 1
    json.dumps(data)  # plain data


def test_ast_labels_in_play(tasks, sounds, photo):
    """AST: its most heard labels plus typed AudioSet names; the picture is scored over those same names."""
    av = AvEvents(tasks["ast"], tasks["clip"])
    result = av(audio=sounds["long"], image=photo, labels="knock, dog barking")
    sound = tasks["ast"](sounds["long"])
    top = [s["label"] for s in sound.summary(5)]
    assert list(result.labels[:5]) == top
    assert "Knock" in result.labels and "dog barking" not in result.labels
    assert any("dog barking" in n and "CLAP" in n for n in result.notices)
    mean = dict(zip(sound.labels, sound.mean_scores()))
    expected = np.array([mean[x] for x in result.labels])
    np.testing.assert_allclose(result.audio_probs, expected / expected.sum())
    assert result.picture.labels == result.labels


def test_one_modality_missing(tasks, sounds, photo):
    av = AvEvents(tasks["clap"], tasks["clip"])
    heard = av(audio=sounds["speech"], labels=LABELS)
    assert heard.fusion == "audio only" and heard.picture is None
    assert any("only the sound" in n for n in heard.notices)
    np.testing.assert_allclose(heard.fused, heard.audio_probs)
    seen = av(image=photo, labels=LABELS)
    assert seen.fusion == "picture only" and seen.sound is None
    assert any("only the picture" in n for n in seen.notices)
    silent_film = av(video=sounds["video_no_sound"], labels=LABELS)
    assert silent_film.fusion == "picture only" and silent_film.picture.frames == 8
    assert any("no sound track" in n for n in silent_film.notices)
    with pytest.raises(NothingToRecognizeError) as caught:
        av(labels=LABELS)
    assert_plain_sentence(str(caught.value), "sound", "picture")


def test_video_gives_sound_and_frames(tasks, sounds):
    from studio.media.video import spread_frames

    av = AvEvents(tasks["clap"], tasks["clip"])
    result = av(video=sounds["video"], labels=LABELS)
    assert result.fusion == "late" and result.picture.frames == 8
    np.testing.assert_allclose(result.audio_probs, tasks["clap"](sounds["video"], LABELS).mean_scores())
    frames = spread_frames(sounds["video"])
    labels = list(result.labels)
    expected = np.mean(
        [[dict((r["label"], r["score"]) for r in tasks["clip"](f, labels).labels)[x] for x in labels] for f in frames],
        axis=0,
    )
    np.testing.assert_allclose(result.picture.probs, expected, atol=1e-6)


def test_untrained_fusion_is_refused(tasks, sounds, photo, models_dir):
    av = AvEvents(tasks["clap"], tasks["clip"])
    for kind in ("early", "attention"):
        with pytest.raises(FusionHeadError) as caught:
            av(audio=sounds["knocks"], image=photo, labels=LABELS, fusion=kind)
        assert_plain_sentence(str(caught.value), "needs a trained fusion head", "late fusion")
        with pytest.raises(FusionHeadError) as caught:
            find_head(models_dir, kind)
        assert_plain_sentence(str(caught.value), "none has been trained yet")


# Fusion heads -------------------------------------------------------------------------------------------------------


def separable_clips(n_per_class=8, classes=3, audio_dim=12, picture_dim=10, seed=0):
    """Clips whose class shows in both embeddings (noisily), with per-modality probabilities that are weak."""
    rng = np.random.default_rng(seed)
    centres_a = rng.standard_normal((classes, audio_dim)) * 2
    centres_p = rng.standard_normal((classes, picture_dim)) * 2
    clips = []
    for label in range(classes):
        for _ in range(n_per_class):
            probs = rng.dirichlet(np.ones(classes))
            clips.append(
                ClipExample(
                    centres_a[label] + rng.standard_normal(audio_dim),
                    centres_p[label] + rng.standard_normal(picture_dim),
                    probs,
                    rng.dirichlet(np.ones(classes)),
                    label,
                )
            )
    return clips


@pytest.mark.parametrize("kind", ["early", "attention"])
def test_head_prediction_equals_its_torch_module(kind):
    """numpy prediction with the saved weights equals the PyTorch module it was trained as."""
    import torch

    from studio.fusion.heads import _torch_head
    from studio.scores import normalize as _normalize

    clips = separable_clips()
    head = train_head(kind, clips, ("a", "b", "c"), "sound-model", "image-model", epochs=50)
    a = np.stack([c.audio_embed for c in clips])
    p = np.stack([c.picture_embed for c in clips])
    probs, shares = head.predict(a, p)
    module = _torch_head(kind, a.shape[1], p.shape[1], 3, torch.Generator())
    with torch.no_grad():
        for name, param in module.named_parameters():
            param.copy_(torch.from_numpy(head.weights[name]))
        xa = torch.from_numpy(_normalize(a) - head.weights["audio_mean"]).float()
        xp = torch.from_numpy(_normalize(p) - head.weights["picture_mean"]).float()
        expected = torch.softmax(module(xa, xp), -1).numpy()
    np.testing.assert_allclose(probs, expected, atol=1e-5)
    np.testing.assert_allclose(shares.sum(-1), 1.0)
    if kind == "early":  # the two logit parts add up to the logits
        za = (_normalize(a) - head.weights["audio_mean"]) @ head.weights["audio_weight"].T
        zp = (_normalize(p) - head.weights["picture_mean"]) @ head.weights["picture_weight"].T
        np.testing.assert_allclose(shares[..., 0], np.abs(za) / (np.abs(za) + np.abs(zp)))
    else:  # one attention weight pair per clip, the same for every class
        np.testing.assert_allclose(shares[:, 0, :], shares[:, 2, :])
    # Deterministic for a seed.
    again = train_head(kind, clips, ("a", "b", "c"), "sound-model", "image-model", epochs=50)
    np.testing.assert_allclose(again.predict(a, p)[0], probs)


def test_stratified_split_keeps_every_class():
    labels = [0] * 5 + [1] * 3 + [2] * 2
    train, test = stratified_split(labels, 0.3, seed=1)
    assert sorted([*train, *test]) == list(range(10)) and not set(train) & set(test)
    assert {labels[i] for i in test} == {0, 1, 2} and {labels[i] for i in train} == {0, 1, 2}
    two_classes = separable_clips(n_per_class=2, classes=2)
    clips = two_classes[:3]  # class 0 twice, class 1 once: nothing of class 1 to check on
    with pytest.raises(FusionHeadError) as caught:
        train_and_compare(clips, ("a", "b"), "sound-model", "image-model")
    assert_plain_sentence(str(caught.value), "at least 2 clips")


def test_trained_heads_beat_weak_late_fusion_on_held_out_clips():
    clips = separable_clips(n_per_class=10)
    heads, evaluation = train_and_compare(clips, ("a", "b", "c"), "sound-model", "image-model")
    acc = evaluation["accuracy"]
    assert evaluation["held_out_clips"] == 9 and evaluation["train_clips"] == 21
    assert acc["early"] >= 0.8 and acc["attention"] >= 0.8
    assert acc["early"] > acc["late"] and acc["attention"] > acc["late"]
    assert set(heads) == {"early", "attention"} and heads["early"].evaluation == evaluation


def test_heads_save_load_and_refuse_damage(models_dir):
    clips = separable_clips()
    head = train_head("attention", clips, ("a", "b", "c"), "sound-model", "image-model", epochs=20)
    folder = save_head(head, models_dir, "kitchen sounds")
    assert folder.parent == models_dir / "fusion-heads"
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")], "temporary folder left"
    loaded = load_head(folder)
    a, p = np.stack([c.audio_embed for c in clips]), np.stack([c.picture_embed for c in clips])
    np.testing.assert_allclose(loaded.predict(a, p)[0], head.predict(a, p)[0])
    assert [h.name for h in list_heads(models_dir, "attention")] == ["kitchen sounds"]
    assert find_head(models_dir, "attention", "Kitchen  Sounds").classes == ("a", "b", "c")
    with pytest.raises(FusionHeadError) as caught:  # wrong models' embeddings
        loaded.predict(a[:, :5], p)
    assert_plain_sentence(str(caught.value), "sound-model", "image-model")
    weights = folder / "weights.npz"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(CorruptFusionHeadError) as caught:
        load_head(folder)
    assert_plain_sentence(str(caught.value), "damaged", "kitchen sounds")


def test_teaching_heads_from_a_folder_of_clips(tasks, sounds, tmp_path, models_dir, tiny_clap_dir, tiny_clip_dir):
    """Clips in one folder per class: both heads trained and saved, compared with late fusion, then used."""
    import shutil

    from studio.services.base import LoadedModels, Runtime
    from studio.services.sound_scene import SoundSceneService
    from tests.inputs import ffmpeg

    folder = tmp_path / "clips"
    for name, source in (("knocking", sounds["knocks"]), ("talking", sounds["speech"])):
        (folder / name).mkdir(parents=True)
        for i, pattern in enumerate(("testsrc", "smptebars", "rgbtestsrc")):
            ffmpeg(
                [
                    "-f",
                    "lavfi",
                    "-i",
                    f"{pattern}=size=64x48:rate=5",
                    "-i",
                    str(source),
                    "-shortest",
                    "-pix_fmt",
                    "yuv420p",
                    str(folder / name / f"{i}.mp4"),
                ]
            )
    (folder / "notes").mkdir()  # a folder without videos is not a class
    classes, clips = collect_clips(folder)
    assert classes == ("knocking", "talking") and len(clips) == 6
    service = SoundSceneService(LoadedModels(models_dir))
    taught = service.teach(
        folder, "my clips", sound=Runtime(str(tiny_clap_dir)), picture=Runtime(str(tiny_clip_dir), backend="torch")
    )
    evaluation, saved = taught["evaluation"], taught["saved"]
    assert len(saved) == 2 and evaluation["held_out_clips"] == 2
    assert set(evaluation["accuracy"]) == {"early", "attention", "late", "audio_only", "picture_only"}
    head = find_head(models_dir, "early")
    av = AvEvents(tasks["clap"], tasks["clip"])
    result = av(video=clips[0][0], fusion="early", head=head)
    assert result.fusion == "early" and result.head == "my clips" and result.labels == classes
    for row in result.ranking():
        assert row["audio"] + row["picture"] == pytest.approx(row["score"])
    shutil.rmtree(folder / "talking")
    with pytest.raises(FusionHeadError) as caught:
        collect_clips(folder)
    assert_plain_sentence(str(caught.value), "at least two sub-folders")
