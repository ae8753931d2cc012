"""The Caption tab's "Detailed" length and the Ask tab's conversation through the HTTP API (gradio_client), on the
tiny SmolVLM: what the app shows and announces is what `DescribeTask` says run directly on the same weights (greedy
tokens of ONNX Runtime and PyTorch are equal, see test_describe_parity.py); follow-up questions carry the history and
"New photo" starts over; a missing picture gets a sentence and the app keeps serving."""

from __future__ import annotations

import re

import pytest
from gradio_client import Client, handle_file

from tests.helpers import outputs_and_toasts, write_test_files

SPEECH_OFF = (False, "auto", 175, "", False)  # speak, source, words per minute, server voice, browser can speak


@pytest.fixture(scope="module")
def files(tmp_path_factory, photos):
    return write_test_files(tmp_path_factory.mktemp("describe-files"), photos)


def _announced(html: str) -> str:
    return re.sub(r"<[^>]+>", "", html).replace("&#x27;", "'").replace("&quot;", '"').replace("&amp;", "&")


def _said(message: dict) -> str:
    """A chat message's text (Gradio 6 hands content back as a list of typed parts)."""
    content = message["content"]
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in content)


def test_detailed_description_is_the_models(describe_app, files, tiny_smolvlm_dir, describe_reference):
    from studio.tasks.describe import DETAIL_PROMPT, MAX_NEW_TOKENS

    client = Client(describe_app[0], verbose=False)
    runtime = (str(tiny_smolvlm_dir), "onnx", "cpu")
    text, announce, _, timing, badge, _ = client.predict(
        handle_file(files["chelsea"]), False, *runtime, *SPEECH_OFF, api_name="/caption_detailed"
    )
    expected = describe_reference(files["chelsea"], [], DETAIL_PROMPT, MAX_NEW_TOKENS["detail"])
    assert text == expected.text and _announced(announce) == expected.text
    assert "First words after" in timing and "ONNX Runtime" in badge


def test_conversation_carries_the_history_and_new_photo_starts_over(
    describe_app, files, tiny_smolvlm_dir, describe_reference
):
    from studio.tasks.describe import MAX_NEW_TOKENS

    client = Client(describe_app[0], verbose=False)
    runtime = (str(tiny_smolvlm_dir), "onnx", "cpu")
    photo = handle_file(files["coffee"])
    first = client.predict(photo, "What is this?", False, *runtime, *SPEECH_OFF, api_name="/converse")
    one = describe_reference(files["coffee"], [], "What is this?", MAX_NEW_TOKENS["answer"])
    assert _said(first[0][-1]) == one.text and first[-1] == ""
    second = client.predict(photo, "Is it hot?", False, *runtime, *SPEECH_OFF, api_name="/converse")
    history = [{"question": "What is this?", "answer": one.model_text}]
    two = describe_reference(files["coffee"], history, "Is it hot?", MAX_NEW_TOKENS["answer"])
    assert [_said(m) for m in second[0]][-2:] == ["Is it hot?", two.text] and len(second[0]) == 4
    client.predict(api_name="/ask_new_photo")
    third = client.predict(photo, "Is it hot?", False, *runtime, *SPEECH_OFF, api_name="/converse")
    alone = describe_reference(files["coffee"], [], "Is it hot?", MAX_NEW_TOKENS["answer"])
    assert len(third[0]) == 2 and _said(third[0][-1]) == alone.text


def test_no_picture_is_a_sentence_and_the_app_keeps_serving(describe_app, files, tiny_smolvlm_dir):
    client = Client(describe_app[0], verbose=False)
    runtime = (str(tiny_smolvlm_dir), "onnx", "cpu")
    job = client.submit(None, "What is this?", False, *runtime, *SPEECH_OFF, api_name="/converse")
    outputs, toasts = outputs_and_toasts(job)
    assert "There is no picture yet" in _announced(outputs[1])
    text = client.predict(handle_file(files["astronaut"]), False, *runtime, *SPEECH_OFF, api_name="/caption_detailed")[
        0
    ]
    assert text
