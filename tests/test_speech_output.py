"""Server-side speech with the real espeak-ng: valid, audible WAV files; speed and length that show in the duration;
hostile text spoken rather than run; no half-written files; plain sentences for every error."""

from __future__ import annotations

import math
import os
import stat
import wave
from pathlib import Path

import numpy as np
import pytest

from studio.errors import StudioError
from studio.media import speech
from studio.media.speech import (
    MAX_CHARACTERS,
    MAX_WPM,
    MIN_WPM,
    BadSpeechRequestError,
    SpeechFailedError,
    SpeechUnavailableError,
    Voice,
)

SENTENCE = "The quick brown fox jumps over the lazy dog, and a blind user hears the caption."

# What `espeak-ng --voices` prints (a few real rows), for the fake espeak-ng below.
VOICES_LISTING = """\
Pty Language       Age/Gender VoiceName          File                 Other Languages
 2  en-gb           --/M      English_(Great_Britain) gmw/en               (en 2)
 2  en-us           --/M      English_(America)  gmw/en-US            (en 3)
"""


@pytest.fixture(scope="module", autouse=True)
def espeak() -> str:
    """The real espeak-ng; its absence fails the tests (scripts/bootstrap installs it)."""
    path = speech._executable()
    assert path, "espeak-ng is not on PATH: install Debian's espeak-ng (scripts/bootstrap does)"
    return path


@pytest.fixture
def out_dir(tmp_path) -> Path:
    d = tmp_path / "speech"
    d.mkdir()
    return d


def read_wav(path: Path) -> tuple[int, int, int, np.ndarray]:
    """(channels, bytes per sample, frame rate, samples as int16) with Python's own WAV reader."""
    with wave.open(str(path), "rb") as w:
        channels, width, rate = w.getnchannels(), w.getsampwidth(), w.getframerate()
        samples = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    return channels, width, rate, samples


def duration_s(path: Path) -> float:
    channels, _, rate, samples = read_wav(path)
    return len(samples) / channels / rate


def assert_sentence(message: str) -> None:
    """A message a user can read: one line, a capital or a quote at the start, a full stop at the end."""
    assert "\n" not in message and "Traceback" not in message, message
    assert message[0].isupper(), message
    assert message.endswith("."), message


def assert_only_speech_files(out_dir: Path, count: int) -> None:
    """`count` finished WAV files and nothing else: no temporary or stray files."""
    names = sorted(p.name for p in out_dir.iterdir())
    assert len(names) == count, names
    assert all(n.startswith("speech-") and n.endswith(".wav") for n in names), names


def test_synthesize_writes_an_audible_mono_16_bit_wav(out_dir):
    path = speech.synthesize(SENTENCE, out_dir)

    assert path.parent == out_dir and path.suffix == ".wav"
    channels, width, rate, samples = read_wav(path)
    assert channels == 1
    assert width == 2
    assert 8_000 <= rate <= 48_000
    assert 2.0 < len(samples) / rate < 15.0  # a 16-word sentence at 175 wpm: about 5 s
    rms = math.sqrt(np.mean(samples.astype(np.float64) ** 2))
    assert rms > 500, f"the speech is (nearly) silent: RMS {rms:.0f} of 32768"
    # Whoever serves the file may run as another user; mkstemp's private 0600 must not survive.
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert_only_speech_files(out_dir, 1)


def test_duration_grows_with_text_length(out_dir):
    short = duration_s(speech.synthesize("Hello there.", out_dir))
    long = duration_s(speech.synthesize(" ".join([SENTENCE] * 3), out_dir))
    assert long > 3 * short, (short, long)


def test_duration_shrinks_as_speed_rises(out_dir):
    slow = duration_s(speech.synthesize(SENTENCE, out_dir, words_per_minute=120))
    fast = duration_s(speech.synthesize(SENTENCE, out_dir, words_per_minute=300))
    assert slow >= 1.8 * fast, (slow, fast)


@pytest.mark.parametrize("words_per_minute", [MIN_WPM, MAX_WPM, 300.0])
def test_every_speed_in_range_is_accepted(out_dir, words_per_minute):
    assert duration_s(speech.synthesize("Speed check.", out_dir, words_per_minute=words_per_minute)) > 0.2


def test_each_call_makes_a_new_file(out_dir):
    first = speech.synthesize(SENTENCE, out_dir)
    second = speech.synthesize(SENTENCE, out_dir)
    assert first != second and first.exists() and second.exists()
    assert_only_speech_files(out_dir, 2)


def test_missing_out_dir_is_created(tmp_path):
    path = speech.synthesize(SENTENCE, tmp_path / "new" / "folder")
    assert path.exists()


@pytest.mark.parametrize(
    "template",
    [
        "-w {tmp}/injected.wav hello",  # would write a second file if taken as options
        "--help",  # would print help and write no speech
        "--version",
        "-s 999 -v xx",
        "; rm -rf / ; touch {tmp}/pwned",
        "$(touch {tmp}/pwned) and `touch {tmp}/pwned` then $HOME",
        "He said \"don't\" and 'won't' | cat > {tmp}/pwned & echo",
        "Null\x00bytes\x07and\x1bcontrols are dropped",
    ],
)
def test_hostile_text_is_spoken_not_run(tmp_path, monkeypatch, template):
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)  # relative paths an injected command might write to land here
    out_dir = tmp_path / "speech"
    text = template.format(tmp=tmp_path)

    path = speech.synthesize(text, out_dir)

    # Spoken: at least a few words' worth of sound (the help text or an empty file would not be).
    assert duration_s(path) > 0.5
    assert_only_speech_files(out_dir, 1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cwd", "speech"]
    assert list(work.iterdir()) == []


def test_a_text_starting_with_a_dash_sounds_like_its_words(out_dir):
    """'-s 450 fast' spoken as words lasts about as long as 'minus s 450 fast', not like an option at 450 wpm."""
    as_text = duration_s(speech.synthesize("-s 450 and then a few more ordinary words", out_dir))
    spelled = duration_s(speech.synthesize("minus s 450 and then a few more ordinary words", out_dir))
    assert as_text > 0.6 * spelled, (as_text, spelled)


@pytest.mark.parametrize("text", ["", "   \n\t  ", "\x00\x01"])
def test_empty_text_is_refused(out_dir, text):
    with pytest.raises(BadSpeechRequestError) as e:
        speech.synthesize(text, out_dir)
    assert "no text" in str(e.value)
    assert_sentence(str(e.value))
    assert list(out_dir.iterdir()) == []


def test_too_long_text_is_refused(out_dir):
    with pytest.raises(BadSpeechRequestError) as e:
        speech.synthesize("a" * (MAX_CHARACTERS + 1), out_dir)
    assert "too long" in str(e.value) and f"{MAX_CHARACTERS:,}" in str(e.value)
    assert_sentence(str(e.value))
    assert list(out_dir.iterdir()) == []


def test_text_of_the_maximum_length_is_spoken(out_dir):
    text = ("word " * (MAX_CHARACTERS // 5))[:MAX_CHARACTERS]
    assert duration_s(speech.synthesize(text, out_dir, words_per_minute=MAX_WPM)) > 60


@pytest.mark.parametrize("words_per_minute", [MIN_WPM - 1, MAX_WPM + 1, 0, -175, 10_000, float("nan"), True, "fast"])
def test_speed_out_of_range_is_refused(out_dir, words_per_minute):
    with pytest.raises(BadSpeechRequestError) as e:
        speech.synthesize(SENTENCE, out_dir, words_per_minute=words_per_minute)
    assert f"between {MIN_WPM} and {MAX_WPM} words per minute" in str(e.value)
    assert_sentence(str(e.value))
    assert list(out_dir.iterdir()) == []


@pytest.mark.parametrize("voice", ["xx-nope", "-w/tmp/x.wav", "", "en-us; rm -rf /"])
def test_unknown_voice_is_refused_with_how_to_list_voices(out_dir, voice):
    with pytest.raises(BadSpeechRequestError) as e:
        speech.synthesize(SENTENCE, out_dir, voice=voice)
    assert "espeak-ng --voices" in str(e.value) and "voice list" in str(e.value)
    assert_sentence(str(e.value))
    assert list(out_dir.iterdir()) == []


def test_voice_names_ignore_case(out_dir):
    assert speech.synthesize(SENTENCE, out_dir, voice="EN-GB").exists()


def test_voices_lists_english_voices_that_all_speak(out_dir):
    english = speech.voices()
    assert Voice(name="en-us", language="en", label="English (America)") in english
    assert any(v.name == "en-gb" for v in english)
    assert all(v.language == "en" for v in english)
    assert all("_" not in v.label for v in english)  # espeak-ng's underscores are shown as spaces
    # Every listed voice can be used (MBROLA voices, which need another program, are left out).
    for v in english:
        assert duration_s(speech.synthesize("Hello.", out_dir, voice=v.name)) > 0.2, v


def test_voices_filter_by_whole_language_tags():
    everything = speech.voices("")
    assert len(everything) > len(speech.voices("en")) > len(speech.voices("en-gb")) > 0
    assert {v.language for v in everything} >= {"en", "de", "fr"}
    assert all(v.name.startswith("en-gb") for v in speech.voices("en-gb"))
    assert speech.voices("e") == []  # "e" is not a language, even though "en" starts with it
    assert len({v.name for v in everything}) == len(everything)  # names are unique: each selects one voice


def test_voice_listing_parser_skips_what_cannot_be_used():
    """Rows as espeak-ng 1.51 prints them (`--voices=en` shows MBROLA voices and variants, which need more than
    Debian's espeak-ng or are not voices), and a name long enough to shift the columns."""
    listing = (
        "Pty Language       Age/Gender VoiceName          File                 Other Languages\n"
        " 2  en-gb           --/M      English_(Great_Britain) gmw/en               (en 2)\n"
        " 3  en-uk           --/M      english-mb-en1     mb/mb-en1            (en-gb 3)(en 2)\n"
        " 5  en-us           --/F      us-mbrola-1        mb/mb-us1            (en 8)\n"
        " 5  variant         --/M      Storm              !v/Storm             (en-us 5)\n"
        " 5  bpy             --/M      Bishnupriya_Manipuri inc/bpy              \n"
        " 5  yue             --/M      Chinese_(Cantonese) sit/yue              (zh-yue 5)(zh 8)\n"
        " 5  yue             --/M      Chinese_(Cantonese,_latin_as_Jyutping) sit/yue-Latn-jyutping (zh-yue 5)\n"
        "\n"
    )
    assert speech._parse_voices(listing) == (
        Voice(name="en-gb", language="en", label="English (Great Britain)"),
        Voice(name="bpy", language="bpy", label="Bishnupriya Manipuri"),
        Voice(name="yue", language="yue", label="Chinese (Cantonese)"),  # the one `-v yue` selects
    )


def test_voices_are_cached(monkeypatch):
    speech.voices()
    calls = []
    real_run = speech.subprocess.run
    monkeypatch.setattr(speech.subprocess, "run", lambda *a, **k: calls.append(a) or real_run(*a, **k))
    speech.voices()
    speech.voices("de")
    assert calls == []


def test_without_espeak_the_server_says_so(tmp_path, monkeypatch, out_dir):
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))

    assert speech.available() is False
    with pytest.raises(SpeechUnavailableError) as e:
        speech.synthesize(SENTENCE, out_dir)
    message = str(e.value)
    assert isinstance(e.value, StudioError)
    assert "cannot read text aloud" in message
    assert "sudo apt-get install espeak-ng" in message
    assert "browser's own voice still works" in message
    assert_sentence(message)
    assert list(out_dir.iterdir()) == []
    with pytest.raises(SpeechUnavailableError):
        speech.voices()


def test_available_with_espeak():
    assert speech.available() is True


def fake_espeak(tmp_path: Path, monkeypatch, body: str) -> None:
    """Puts a fake espeak-ng first on PATH: it lists two voices, and runs `body` (with $out, the -w file) to speak."""
    bin_dir = tmp_path / "fake-bin"
    bin_dir.mkdir()
    script = bin_dir / "espeak-ng"
    script.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = "--voices" ]; then cat <<"EOF"\n' + VOICES_LISTING + "EOF\nexit 0; fi\n"
        'out=""; while [ $# -gt 0 ]; do [ "$1" = "-w" ] && out="$2"; shift; done\n' + body + "\n"
    )
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    assert speech._executable() == str(script)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        # Writes half a file, then fails.
        ("printf 'RIFF\\000\\000' > \"$out\"; echo 'Error: something broke.' >&2; exit 1", "something broke"),
        # Claims success with something that is not a WAV.
        ("printf 'not a wav file' > \"$out\"; exit 0", "usable sound file"),
        # Claims success but writes nothing.
        ("exit 0", "usable sound file"),
        # Hangs: stopped at the timeout (exec, so that the kill reaches the sleeping process itself).
        ("printf 'RIFF' > \"$out\"; exec sleep 30", "longer than 1 seconds"),
    ],
)
def test_a_failure_leaves_no_file_behind(tmp_path, monkeypatch, out_dir, body, expected):
    fake_espeak(tmp_path, monkeypatch, body)
    monkeypatch.setattr(speech, "TIMEOUT_S", 1.0)

    with pytest.raises(SpeechFailedError) as e:
        speech.synthesize(SENTENCE, out_dir)
    assert expected in str(e.value)
    assert_sentence(str(e.value))
    assert list(out_dir.iterdir()) == []


def test_an_interrupted_synthesis_leaves_no_file_behind(monkeypatch, out_dir):
    def interrupted(*args, **kwargs):
        Path(args[0][-1]).write_bytes(b"RIFF")  # espeak-ng had started writing
        raise KeyboardInterrupt

    speech.voices()  # cached first, so that only synthesis meets the interruption
    monkeypatch.setattr(speech.subprocess, "run", interrupted)
    with pytest.raises(KeyboardInterrupt):
        speech.synthesize(SENTENCE, out_dir)
    assert list(out_dir.iterdir()) == []
