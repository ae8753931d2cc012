"""The Sound & scene tab of the launched app, driven through its HTTP API with gradio_client.

What the tab shows is compared with `AvEvents` run directly on the same models and files; bad input must come back
as a plain sentence (in the live region and as a warning toast) while the app keeps serving.

/listen_stream (the microphone stream) is not tested here: gradio_client cannot call a streaming event (it fails with
KeyError('process_streaming')); the browser test plays a recording as chromium's microphone instead.
"""

from __future__ import annotations

import numpy as np
import pytest
from gradio_client import Client, handle_file

from tests.helpers import assert_plain_sentence, outputs_and_toasts, text_of

LABELS = "dog barking, door knock, applause"


@pytest.fixture(scope="module")
def client(sound_app):
    return Client(sound_app[0], verbose=False)


@pytest.fixture(scope="module")
def reference(sound_app, tiny_ast_dir, tiny_clip_dir):
    """AvEvents with the tab's default runtime (Automatic: the AST export; CLIP has none, so PyTorch)."""
    from studio.tasks.av_events import AvEvents
    from studio.tasks.sound_events import SoundEventsTask
    from studio.tasks.zero_shot import ZeroShotTask

    models_dir = sound_app[1]
    return AvEvents(
        SoundEventsTask.load(str(tiny_ast_dir), models_dir, device="cpu"),
        ZeroShotTask.load(str(tiny_clip_dir), models_dir, device="cpu"),
    )


@pytest.fixture(scope="module")
def photo(tmp_path_factory, photos):
    path = tmp_path_factory.mktemp("sound-app-photo") / "astronaut.jpg"
    photos["astronaut"].save(path)
    return path


def recognise(
    client,
    audio=None,
    video=None,
    image=None,
    labels=LABELS,
    fusion="late",
    head=None,
    weight=0.5,
    model=None,
    picture_model=None,
):
    job = client.submit(
        handle_file(str(audio)) if audio else None,
        handle_file(str(video)) if video else None,
        handle_file(str(image)) if image else None,
        labels,
        fusion,
        head,
        weight,
        str(model),
        "auto",
        "cpu",
        str(picture_model),
        "auto",
        "cpu",
        api_name="/recognise",
    )
    return outputs_and_toasts(job)


def scores_of(label_output) -> dict[str, float]:
    assert isinstance(label_output, dict) and "confidences" in label_output, label_output
    return {c["label"]: c["confidence"] for c in label_output["confidences"]}


def test_sound_and_picture(client, reference, sounds, photo, tiny_ast_dir, tiny_clip_dir):
    outputs, _ = recognise(
        client, audio=sounds["long"], image=photo, weight=0.3, model=tiny_ast_dir, picture_model=tiny_clip_dir
    )
    fused, shares_plot, shares_text, timeline_plot, timeline_text, summary, timing, badge, announce = outputs
    expected = reference(audio=sounds["long"], image=photo, labels=LABELS, audio_weight=0.3)
    top = expected.ranking(5)
    got = scores_of(fused)
    assert list(got) == [r["label"] for r in top]
    assert list(got.values()) == pytest.approx([r["score"] for r in top], abs=1e-5)
    assert text_of(announce) == f"Most likely: {top[0]['label']} ({top[0]['score']:.0%}, late fusion)."
    # The chart and its words: each top label's score and each modality's part.
    assert shares_plot is not None and timeline_plot is not None
    for r in top:
        assert f"- {r['label']}: {r['score']:.0%} (sound {r['audio']:.0%}, picture {r['picture']:.0%})" in shares_text
    windows = expected.sound.events()
    assert timeline_text.count("\n- ") == len(windows) >= 6
    assert summary.startswith("**Heard most over the whole recording:**")
    assert expected.sound.summary(1)[0]["label"] in summary
    assert badge == "**Runs on:** sound: ONNX Runtime · CPU · picture: PyTorch · CPU"
    assert timing.startswith("Took ")


def test_video_is_heard_and_seen(client, reference, sounds, tiny_ast_dir, tiny_clip_dir):
    outputs, _ = recognise(client, video=sounds["video"], model=tiny_ast_dir, picture_model=tiny_clip_dir)
    expected = reference(video=sounds["video"], labels=LABELS)
    assert list(scores_of(outputs[0])) == [r["label"] for r in expected.ranking(5)]
    assert "late fusion" in text_of(outputs[8])


def test_silent_film_uses_its_pictures_and_says_so(client, sounds, tiny_ast_dir, tiny_clip_dir):
    outputs, toasts = recognise(client, video=sounds["video_no_sound"], model=tiny_ast_dir, picture_model=tiny_clip_dir)
    assert "from the picture alone" in text_of(outputs[8])
    assert any("no sound track" in message for message, _ in toasts)
    assert "no timeline" in outputs[4]


@pytest.mark.parametrize(
    ("case", "words"),
    [("nothing", ("nothing to recognise",)), ("corrupt", ("broken.mp3",)), ("silence", ("silent",))],
)
def test_bad_input_gets_a_sentence_and_the_app_keeps_serving(
    client, sounds, photo, tiny_ast_dir, tiny_clip_dir, case, words
):
    audio = None if case == "nothing" else sounds[case]
    outputs, toasts = recognise(client, audio=audio, model=tiny_ast_dir, picture_model=tiny_clip_dir)
    sentence = text_of(outputs[8])
    assert_plain_sentence(sentence, *words)
    assert 'class="studio-problem"' in outputs[8]
    assert not [m for m, _ in toasts if m == sentence], toasts  # said once, in the live region
    outputs, _ = recognise(client, image=photo, model=tiny_ast_dir, picture_model=tiny_clip_dir)
    assert "from the picture alone" in text_of(outputs[8])


def test_fusion_modes_need_training_until_a_head_is_trained(
    client, sound_app, sounds, photo, tiny_ast_dir, tiny_clip_dir, reference
):
    """Early fusion: "needs training" and late fusion shown, never a prediction of an untrained head; once a head is
    trained (teach_fusion, from a folder of clips), it is offered and used."""
    from tests.inputs import ffmpeg

    note, head = client.predict("early", api_name="/fusion_note")
    assert "needs training" in note and head["choices"] == []
    outputs, toasts = recognise(
        client, audio=sounds["knocks"], image=photo, fusion="early", model=tiny_ast_dir, picture_model=tiny_clip_dir
    )
    assert "late fusion" in text_of(outputs[8])
    assert any("needs a trained fusion head" in m and "late fusion" in m for m, _ in toasts)

    folder = sound_app[1].parent / "clips"
    for name, source in (("knocking", sounds["knocks"]), ("talking", sounds["speech"])):
        (folder / name).mkdir(parents=True)
        for i in range(2):
            ffmpeg(
                [
                    "-f",
                    "lavfi",
                    "-i",
                    f"testsrc=size=64x48:rate=5:decimals={i}",
                    "-i",
                    str(source),
                    "-shortest",
                    "-pix_fmt",
                    "yuv420p",
                    str(folder / name / f"{i}.mp4"),
                ]
            )
    status, comparison = client.predict(
        str(folder),
        "doors",
        0.5,
        str(tiny_ast_dir),
        "auto",
        "cpu",
        str(tiny_clip_dir),
        "auto",
        "cpu",
        api_name="/teach_fusion",
    )
    assert text_of(status) == "Saved 2 fusion heads as “doors”."
    assert "| Early fusion head |" in comparison and "| Late fusion (sound weight 0.5) |" in comparison
    assert "checked on 2 held-out clips" in comparison

    note, head = client.predict("attention", api_name="/fusion_note")
    assert head["value"] == "doors" and "trained head" in note
    outputs, _ = recognise(
        client,
        audio=sounds["knocks"],
        image=photo,
        fusion="attention",
        head="doors",
        model=tiny_ast_dir,
        picture_model=tiny_clip_dir,
    )
    assert "attention fusion" in text_of(outputs[8])
    assert set(scores_of(outputs[0])) == {"knocking", "talking"}
    assert sum(scores_of(outputs[0]).values()) == pytest.approx(1.0, abs=1e-6)
    assert np.isfinite(list(scores_of(outputs[0]).values())).all()


def test_microphone_stream_hears_the_last_seconds(sound_app, sounds, tiny_ast_dir):
    """The microphone stream's handler, fed half-second chunks of a recording as gradio delivers them ((rate, int16
    array)): every second it shows the rolling window's scores, as the task scores those very samples."""
    import wave

    from studio.services.base import LoadedModels
    from studio.tasks.sound_events import SoundEventsTask
    from studio.ui.sound_tab import SoundTab

    tab = SoundTab(LoadedModels(sound_app[1]))
    with wave.open(str(sounds["speech"])) as w:
        rate = w.getframerate()
        samples = np.frombuffer(w.readframes(w.getnframes()), "<i2")
    shown = []
    for i in range(0, len(samples), rate // 2):
        scores, announce, live = tab.listen_stream(
            (rate, samples[i : i + rate // 2]), "", str(tiny_ast_dir), "auto", "cpu", request=None
        )
        if scores.get("__type__") != "update":  # gr.skip(): no new step yet
            shown.append((scores, text_of(announce), live))
    assert len(shown) == 1  # 1.8 s of sound, heard every second
    task = SoundEventsTask.load(str(tiny_ast_dir), sound_app[1], device="cpu")
    assert tab.listeners["local"][1].heard_s <= len(samples) / rate
    from studio.media.audio import load_audio

    whole = load_audio(sounds["speech"], task.rate, None).samples
    expected = task.listen_window(whole[: task.rate], None).top(task.model_labels, 5)
    scores, announce, live = shown[0]
    assert list(scores) == [e["label"] for e in expected]
    assert list(scores.values()) == pytest.approx([e["score"] for e in expected], abs=1e-4)
    assert announce == f"Hearing: {expected[0]['label']}"
    assert live.startswith("1 s heard; the last 1 s:")
    tab.stop_listening(request=None)
    assert "local" not in tab.listeners
