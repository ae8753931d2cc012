"""A bounded fuzz of every `api_name` endpoint of the shared app (loopback, fixed seed): malformed payloads through
gradio_client and raw HTTP (wrong types, None, empty and 1 MB strings, NaN/inf and negative numbers, paths with `..`,
non-image bytes as images, wrong numbers of inputs, bodies that are no JSON). No traceback reaches the client, every
refusal is a sentence, and the app still classifies a photo afterwards. The counts are printed (run with -s)."""

from __future__ import annotations

import json
import logging
import math
import random
import time
from collections import Counter

import httpx
import pytest

from studio.ui.guard import UNEXPECTED
from tests.helpers import assert_plain_sentence, launched_app

SEED = 15
CLIENT_CALLS_PER_ENDPOINT = 3
HTTP_CALLS_PER_ENDPOINT = 2
JOB_TIMEOUT_S = 6  # a camera stream's event waits for frames that never come: cancelled after this
JARGON = ("Traceback", 'File "', "Exception:", "Error:")


class _Counting(logging.Handler):
    """Counts the requests the guard caught failing unexpectedly (their tracebacks go to the server log only)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.failures: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info:
            self.failures.append(f"{record.exc_info[0].__name__}: {record.exc_info[1]}"[:300])


@pytest.fixture(scope="module")
def fuzzed_app(tmp_path_factory, exported_models_dir, tiny_clip_dir):
    """The shared app (`--shared` on 127.0.0.1, one allowed folder) with the tiny CLIP preselected.

    Yields:
        (base URL, the handler counting unexpected failures, files: {"text", "empty", "photo"})
    """
    root = tmp_path_factory.mktemp("fuzz")
    (root / "allowed").mkdir()
    files = {"text": root / "not-a-photo.jpg", "empty": root / "empty.wav", "photo": root / "chelsea.jpg"}
    files["text"].write_bytes(b"%PDF-1.4 these bytes are no picture\n" * 50)
    files["empty"].write_bytes(b"")
    import skimage.data
    from PIL import Image

    Image.fromarray(skimage.data.chelsea()).resize((96, 64)).save(files["photo"])
    counting = _Counting()
    logging.getLogger("studio.ui.guard").addHandler(counting)
    app = launched_app(
        tmp_path_factory, "fuzz", exported_models_dir, {"zero-shot": tiny_clip_dir}, shared=True,
        allow_paths=[root / "allowed"],
    )  # fmt: skip
    url, _ = next(app)
    try:
        yield url, counting, files
    finally:
        app.close()
        logging.getLogger("studio.ui.guard").removeHandler(counting)


def _malformed(rng: random.Random, files: dict):
    from gradio_client import handle_file

    pool = [
        None,
        "",
        "x" * 1_000_000,  # 1 MB
        -1,
        -1e9,
        math.nan,
        math.inf,
        -math.inf,
        0,
        10**12,
        True,
        [],
        {},
        [1, "two", None],
        {"path": "../../../../etc/passwd", "meta": {"_type": "gradio.FileData"}},
        "../../../../etc/passwd",
        "/etc",
        "☕/../..",
        "a\0b",
        "mug, " * 2000,
        lambda: handle_file(str(files["text"])),  # bytes that are no picture, named .jpg
        lambda: handle_file(str(files["empty"])),
    ]
    value = rng.choice(pool)
    return value() if callable(value) else value


def _assert_no_traceback(text: str) -> None:
    for jargon in JARGON:
        assert jargon not in text, f"{jargon!r} reached the client: {text[:500]!r}"


def _check_refusal(message, counts: Counter, where: str) -> None:
    """A refusal that reached the client: a sentence, never a traceback."""
    assert isinstance(message, str) and message, f"{where}: an error without a sentence ({message!r})"
    _assert_no_traceback(message)
    assert_plain_sentence(message)
    counts["unexpected (caught, said as a sentence)" if message == UNEXPECTED else "refused with a sentence"] += 1


def test_fuzz_every_endpoint(fuzzed_app, capsys):
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    url, counting, files = fuzzed_app
    rng = random.Random(SEED)
    client = Client(url, verbose=False)
    endpoints = {
        name: info["parameters"]
        for name, info in sorted(client.view_api(return_format="dict", print_info=False)["named_endpoints"].items())
    }
    assert len(endpoints) >= 50  # every tab's events
    counts: dict[str, Counter] = {"gradio_client": Counter(), "raw HTTP": Counter()}
    took: Counter = Counter()
    took_http: Counter = Counter()

    for name, parameters in endpoints.items():
        for _ in range(CLIENT_CALLS_PER_ENDPOINT):
            # An export with well-formed inputs is minutes of real work, not a malformed request: always malformed.
            well_formed = 0.0 if name.endswith("_export_model") else 0.4
            args = [_argument(rng, files, p, well_formed) for p in parameters]
            counts["gradio_client"]["calls"] += 1
            started = time.monotonic()
            try:
                job = client.submit(*args, api_name=name)
                job.result(timeout=JOB_TIMEOUT_S)
                counts["gradio_client"]["answered"] += 1
            except AppError as exc:
                _check_refusal(exc.message, counts["gradio_client"], name)
            except TimeoutError:
                job.cancel()
                counts["gradio_client"]["timed out (camera streams wait for frames)"] += 1
            except Exception as exc:  # noqa: BLE001 - the client's own refusals (it checks types and counts first)
                _assert_no_traceback(str(exc))
                counts["gradio_client"][f"refused by the client ({type(exc).__name__})"] += 1
            took[name] += time.monotonic() - started

    with httpx.Client(base_url=url, timeout=JOB_TIMEOUT_S + 10) as http:
        for name, parameters in endpoints.items():
            path = f"gradio_api/call{name}"
            for n in range(HTTP_CALLS_PER_ENDPOINT):
                body = _raw_body(rng, parameters, n)
                counts["raw HTTP"]["calls"] += 1
                sent = http.post(path, content=body, headers={"content-type": "application/json"})
                _assert_no_traceback(sent.text)
                if sent.status_code != 200:
                    assert 400 <= sent.status_code < 500 or sent.status_code == 503, (name, sent.status_code, sent.text)
                    counts["raw HTTP"][f"refused at once (HTTP {sent.status_code})"] += 1
                    continue
                started = time.monotonic()
                event, data = _last_event(http, f"{path}/{sent.json()['event_id']}")
                took_http[name] += time.monotonic() - started
                _assert_no_traceback(json.dumps(data))
                if event == "complete":
                    counts["raw HTTP"]["answered"] += 1
                elif event == "error":
                    _check_refusal(
                        (data or {}).get("error") if isinstance(data, dict) else data, counts["raw HTTP"], name
                    )
                else:
                    counts["raw HTTP"][f"ended with {event}"] += 1

        # Files the visitor names but never uploaded, and uploads that are no files.
        for payload in (
            {"path": "/etc/passwd"},
            {"path": "../../../etc/hostname", "meta": {"_type": "gradio.FileData"}},
        ):
            counts["raw HTTP"]["calls"] += 1
            sent = http.post("gradio_api/call/classify", json={"data": [payload, "cat, cup"]})
            event, data = _last_event(http, f"gradio_api/call/classify/{sent.json()['event_id']}")
            assert event == "error", (payload, event, data)
            _check_refusal(data["error"], counts["raw HTTP"], "/classify with a server path")
        for upload in ({"files": ("a.jpg", b"")}, {"wrong": ("a.jpg", b"x")}):
            counts["raw HTTP"]["calls"] += 1
            sent = http.post("gradio_api/upload", files=upload)
            _assert_no_traceback(sent.text)
            counts["raw HTTP"][f"upload answered (HTTP {sent.status_code})"] += 1

    # Still serving: a normal request gets its normal answer.
    from gradio_client import handle_file

    out = Client(url, verbose=False).predict(handle_file(str(files["photo"])), "cat, cup", api_name="/classify")
    assert {row["label"] for row in out[0]["confidences"]} == {"cat", "cup"}

    total = sum(c["calls"] for c in counts.values())
    with capsys.disabled():
        print(f"\nAPI fuzz, seed {SEED}: {len(endpoints)} endpoints, {total} calls")
        for channel, counter in counts.items():
            print(f"  {channel}: " + ", ".join(f"{k} {v}" for k, v in sorted(counter.items())))
        print(f"  unexpected failures caught by the guard (server log): {len(counting.failures)}")
        for failure in sorted(set(counting.failures)):
            print(f"    {failure}")
        for channel, spent in (("gradio_client", took), ("raw HTTP", took_http)):
            print(f"  slowest endpoints ({channel}): " + ", ".join(f"{n} {t:.1f} s" for n, t in spent.most_common(5)))
    assert 200 <= total <= 500


def _argument(rng: random.Random, files: dict, parameter: dict, well_formed: float):
    """A malformed value, or (with probability `well_formed`) the parameter's default."""
    if rng.random() >= well_formed or not parameter.get("parameter_has_default"):
        return _malformed(rng, files)
    return parameter["parameter_default"]


def _raw_body(rng: random.Random, parameters: list, n: int) -> bytes:
    """A request body: inputs of wrong types and count, or a body that is not what the API reads at all."""
    if n == 0:
        count = max(0, len(parameters) + rng.choice([-2, -1, 0, 0, 1]))
        values = [rng.choice([None, "", -1, 1e308, "../../etc", [], {}, True, "x" * 10_000]) for _ in range(count)]
        return json.dumps({"data": values}).encode()
    return rng.choice(
        [
            b"not json at all",
            b"{}",
            b'{"data": "a string"}',
            b'{"data": [NaN, Infinity, -Infinity]}',
            b"[]",
            b"\xff\xfe",
        ]
    )


def _last_event(http: httpx.Client, path: str) -> tuple[str, object]:
    """The last SSE event of a /call/ request: (event, data)."""
    event, data = "", None
    with http.stream("GET", path) as stream:
        for line in stream.iter_lines():
            if line.startswith("event: "):
                event = line[len("event: ") :]
            elif line.startswith("data: "):
                data = json.loads(line[len("data: ") :])
    return event, data
