"""Speech on the server: text -> WAV file with espeak-ng, for browsers that cannot speak themselves.

Blind and low-vision users hear captions and answers. The browser's own speech synthesis comes first (it needs no
round trip and uses the voice the user chose); this module is the fallback for browsers without it: the app plays the
file it writes in a `gr.Audio` component.

espeak-ng is a Debian package (`scripts/bootstrap` installs it), run as a subprocess: no shell, the text on stdin, so
nothing a user types can become an option or a command.
"""

from __future__ import annotations

import functools
import math
import re
import shutil
import subprocess
import uuid
import wave
from dataclasses import dataclass
from pathlib import Path

from studio.atomic import replaced_on_success
from studio.errors import StudioError

# espeak-ng's -s is words per minute. Its own range is 80..450 (faster needs its "sonic" speed-up, which sounds
# garbled); screen-reader users often listen at 300 or more, so the whole range is offered.
MIN_WPM = 80
MAX_WPM = 450
DEFAULT_WPM = 175

# A caption or an answer is a few sentences; 5,000 characters is several minutes of speech at the default speed,
# and bounds the time and disk one request can take.
MAX_CHARACTERS = 5_000

# Several minutes of speech take espeak-ng about a second; 30 s means it is stuck, not busy.
TIMEOUT_S = 30.0

_INSTALL_HINT = "on Debian or Ubuntu: sudo apt-get install espeak-ng"

# C0 control characters other than tab and newlines: a NUL would end the text early inside espeak-ng (C strings), and
# the others have nothing to say.
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class SpeechUnavailableError(StudioError):
    """espeak-ng is not installed on the server, so it cannot make speech (the browser's own voice still can)."""


class BadSpeechRequestError(StudioError):
    """The text, speed or voice asked for cannot be spoken."""


class SpeechFailedError(StudioError):
    """espeak-ng ran but did not produce a usable sound file."""


@dataclass(frozen=True)
class Voice:
    """One espeak-ng voice.

    Attributes:
        name: What `synthesize(voice=...)` takes: espeak-ng's language tag for the voice, e.g. "en-us".
        language: The language it speaks (the tag's first part), e.g. "en".
        label: Human-readable, e.g. "English (America)".
    """

    name: str
    language: str
    label: str


def available() -> bool:
    """Whether the server can make speech: espeak-ng (or the older espeak) is on PATH."""
    return _executable() is not None


def voices(language_prefix: str = "en") -> list[Voice]:
    """The voices espeak-ng has here for a language, in its (alphabetical) order, from `espeak-ng --voices`.

    The list is read once per espeak-ng executable and then cached.

    Args:
        language_prefix: A language tag or its start by whole parts: "en" gives "en-us", "en-gb-scotland"...;
            "en-gb" gives the British ones; "" gives every voice.

    Returns:
        The matching voices; empty when there are none for that language.

    Raises:
        SpeechUnavailableError: espeak-ng is not installed.
        SpeechFailedError: espeak-ng could not list its voices.
    """
    prefix = language_prefix.strip().lower()
    return [
        v
        for v in _voices_of(_require_executable())
        if not prefix or v.name.lower() == prefix or v.name.lower().startswith(prefix + "-")
    ]


def synthesize(text: str, out_dir: Path, words_per_minute: int = DEFAULT_WPM, voice: str = "en-us") -> Path:
    """Speaks a text into a new mono 16-bit WAV file in `out_dir`.

    The file appears complete or not at all: espeak-ng writes a hidden temporary file beside it, which is renamed
    into place once checked, and removed on any failure.

    Args:
        text: What to say, at most `MAX_CHARACTERS` characters. Spoken as is: a text starting with "-" or holding
            shell characters is read aloud, never interpreted.
        out_dir: The folder for the file (created if missing).
        words_per_minute: Speaking speed, `MIN_WPM` to `MAX_WPM`.
        voice: A voice's `name` from `voices()`, e.g. "en-us" or "en-gb".

    Returns:
        The path of the new WAV file (a unique name, so concurrent requests never share one).

    Raises:
        BadSpeechRequestError: Empty or too long a text, a speed out of range, or an unknown voice.
        SpeechUnavailableError: espeak-ng is not installed.
        SpeechFailedError: espeak-ng failed, took longer than `TIMEOUT_S`, or wrote no usable sound.
    """
    text = _clean_text(text)
    speed = _check_speed(words_per_minute)
    executable = _require_executable()
    voice_name = _check_voice(voice, executable)

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    final = out_dir / f"speech-{uuid.uuid4().hex}.wav"
    # 0644: the file is no secret and whatever serves it may run as another user.
    with replaced_on_success(final, mode=0o644) as tmp:
        _run_espeak(executable, text, speed, voice_name, tmp)
        _check_wav(tmp)
    return final


def _executable() -> str | None:
    """The espeak-ng program on PATH (or the older espeak, which takes the same options), or None."""
    return shutil.which("espeak-ng") or shutil.which("espeak")


def _require_executable() -> str:
    """The espeak program, or SpeechUnavailableError with what to do."""
    executable = _executable()
    if executable is None:
        raise SpeechUnavailableError(
            "This server cannot read text aloud because espeak-ng is not installed; "
            f"install it ({_INSTALL_HINT}) and restart the app. Your browser's own voice still works."
        )
    return executable


def _clean_text(text: str) -> str:
    """The text to speak, or BadSpeechRequestError when it is empty or too long."""
    if not isinstance(text, str):
        raise BadSpeechRequestError("There is no text to read aloud.")
    text = _CONTROL_CHARACTERS.sub(" ", text).strip()
    if not text:
        raise BadSpeechRequestError("There is no text to read aloud.")
    if len(text) > MAX_CHARACTERS:
        raise BadSpeechRequestError(
            f"This text is too long to read aloud here ({len(text):,} characters; at most {MAX_CHARACTERS:,}): "
            "read it in parts."
        )
    return text


def _check_speed(words_per_minute: int) -> int:
    """The speed as an int, or BadSpeechRequestError outside MIN_WPM..MAX_WPM."""
    # Sliders may hand over floats (175.0); a bool is an int in Python but never a speed.
    ok = (
        isinstance(words_per_minute, (int, float))
        and not isinstance(words_per_minute, bool)
        and math.isfinite(words_per_minute)
    )
    speed = round(words_per_minute) if ok else None
    if speed is None or not MIN_WPM <= speed <= MAX_WPM:
        raise BadSpeechRequestError(
            f"The reading speed must be between {MIN_WPM} and {MAX_WPM} words per minute (it was {words_per_minute!r})."
        )
    return speed


def _check_voice(voice: str, executable: str) -> str:
    """espeak-ng's own spelling of a known voice name, or BadSpeechRequestError."""
    # Checked against espeak-ng's list rather than left to espeak-ng: its own message is English jargon, and an
    # unchecked value is an argument we would pass on unseen.
    by_name = {v.name.lower(): v.name for v in _voices_of(executable)}
    name = by_name.get(voice.strip().lower()) if isinstance(voice, str) else None
    if name is None:
        raise BadSpeechRequestError(
            f"There is no voice called {voice!r} on this server; choose one from the voice list, "
            "or run `espeak-ng --voices` on the server to see them all."
        )
    return name


@functools.lru_cache(maxsize=4)
def _voices_of(executable: str) -> tuple[Voice, ...]:
    """Every voice that `executable --voices` lists, cached per executable (tests swap it via PATH)."""
    try:
        done = subprocess.run(
            [executable, "--voices"], capture_output=True, timeout=TIMEOUT_S, check=False, stdin=subprocess.DEVNULL
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        raise SpeechFailedError(f"The server could not list its espeak-ng voices ({e}).") from e
    if done.returncode != 0:
        raise SpeechFailedError(
            f"The server could not list its espeak-ng voices (espeak-ng said: {_last_line(done.stderr)})."
        )
    return _parse_voices(done.stdout.decode("utf-8", errors="replace"))


def _parse_voices(listing: str) -> tuple[Voice, ...]:
    """Voices from `espeak-ng --voices`: a header, then `Pty Language Age/Gender VoiceName File (Other langs)...`."""
    found: dict[str, Voice] = {}
    for line in listing.splitlines()[1:]:
        fields = line.split()
        # VoiceName has "_" for spaces, so whitespace splitting is safe even where a long name shifts the columns.
        if len(fields) < 5:
            continue
        _, tag, _, voice_name, file = fields[:5]
        # MBROLA voices need the separate mbrola program and its voice data, which Debian's espeak-ng does not bring;
        # "variant" rows are modifiers (voice+variant), not voices.
        if file.startswith("mb/") or tag == "variant":
            continue
        # A tag listed twice (e.g. Cantonese in two spellings) selects the first with `-v tag`: keep that one.
        found.setdefault(tag, Voice(name=tag, language=tag.split("-")[0], label=voice_name.replace("_", " ")))
    return tuple(found.values())


def _run_espeak(executable: str, text: str, speed: int, voice: str, out: Path) -> None:
    """Runs espeak-ng to write `text` spoken into `out`; SpeechFailedError on failure or timeout."""
    # The text goes on stdin (--stdin reads it whole), never on the command line: it cannot be taken for an option
    # however it starts, and no shell ever sees it. -b 1: the bytes are UTF-8 whatever the server's locale.
    command = [executable, "--stdin", "-b", "1", "-s", str(speed), "-v", voice, "-w", str(out)]
    try:
        done = subprocess.run(command, input=text.encode("utf-8"), capture_output=True, timeout=TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired as e:
        raise SpeechFailedError(
            f"Reading this text aloud took longer than {TIMEOUT_S:g} seconds, so it was stopped; try a shorter text."
        ) from e
    except FileNotFoundError as e:  # uninstalled between the PATH lookup and now
        raise SpeechUnavailableError(
            f"This server cannot read text aloud because espeak-ng is missing; install it ({_INSTALL_HINT}). "
            "Your browser's own voice still works."
        ) from e
    except OSError as e:
        raise SpeechFailedError(f"The server could not start espeak-ng to read this text aloud ({e}).") from e
    if done.returncode != 0:
        raise SpeechFailedError(
            f"The server could not read this text aloud (espeak-ng said: {_last_line(done.stderr)})."
        )


def _check_wav(path: Path) -> None:
    """SpeechFailedError unless `path` is a mono 16-bit WAV with some sound in it."""
    try:
        with wave.open(str(path), "rb") as w:
            channels, width, frames = w.getnchannels(), w.getsampwidth(), w.getnframes()
    except (wave.Error, EOFError, OSError) as e:
        # The reader's own words ("unknown format: 0") mean nothing to a user; they stay in the chained exception.
        raise SpeechFailedError(
            "The server could not read this text aloud: espeak-ng did not write a usable sound file."
        ) from e
    if channels != 1 or width != 2 or frames == 0:
        raise SpeechFailedError(
            "The server could not read this text aloud: espeak-ng wrote an unexpected sound file "
            f"({channels} channel(s), {8 * width}-bit, {frames} samples)."
        )


def _last_line(stderr: bytes) -> str:
    """The last non-empty line of a program's error output, to quote in a sentence."""
    lines = [line.strip() for line in stderr.decode("utf-8", errors="replace").splitlines() if line.strip()]
    return lines[-1].rstrip(".") if lines else "no message"
