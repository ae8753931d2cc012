"""What the Caption tab's "Detailed" length and the Ask tab's conversation share: a description or an answer from
the vision-language model, shown and spoken sentence by sentence while it is generated, announced once when complete,
and stopped by the Stop button (or Alt+Shift+S) of the session that asked."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import gradio as gr

from studio.errors import StudioError
from studio.services.base import Runtime
from studio.ui.components import live_region, problem, runtime_badge, ui_progress

UI_SPLIT = False


class DescribeStreams:
    """The describe service and each session's stop switch.

    Args:
        loaded: The app's loaded models.
        announce_id: The tab's live region id (one announcement per answer).
    """

    def __init__(self, loaded, announce_id: str) -> None:
        from studio.services.describe import DescribeService

        self.service = DescribeService(loaded)
        self.announce_id = announce_id
        self.stops: dict[str, threading.Event] = {}
        self.said = 0

    def stop(self, session: str) -> None:
        """Stops the session's generation (what was said is kept)."""
        if session in self.stops:
            self.stops[session].set()

    def run(self, session: str, image, progress: gr.Progress, **options) -> Iterator[tuple]:
        """Streams one answer as (text so far, announcement, sentence to speak "N|K|text", timing, badge, result).

        The announcement is skipped until the answer is complete, then said once; each sentence goes to speech as
        soon as it is complete. The last item's result is the service's dict (None after a problem).
        """
        stop = threading.Event()
        previous = self.stops.get(session)
        if previous is not None:
            previous.set()  # a new request ends the one before
        self.stops[session] = stop
        shown: list[str] = []
        try:
            if image is None:
                raise StudioError(
                    "There is no picture yet. Upload a photo, take one with the camera, or pick an example."
                )
            runtime = options.pop("runtime", Runtime())
            # The tabs look at the whole picture once (the global view): the processor's tiles cost about 13 times
            # the image work (25 s on 2 CPU cores), too slow to talk with. `studio predict describe` splits.
            options.setdefault("split", UI_SPLIT)
            events = self.service.stream(image, runtime=runtime, stop=stop, progress=ui_progress(progress), **options)
            for event in events:
                if event["event"] == "sentence":
                    shown.append(event["sentence"]["text"])
                    self.said += 1
                    spoken = f"{self.said}|{event['index']}|{event['sentence']['text']}"
                    yield " ".join(shown), gr.skip(), spoken, "Speaking while the rest is written…", gr.skip(), None
                elif event["event"] == "done":
                    result = event["result"]
        except StudioError as exc:
            yield gr.skip(), problem(str(exc), self.announce_id), gr.skip(), gr.skip(), gr.skip(), None
            return
        finally:
            if self.stops.get(session) is stop:
                del self.stops[session]
        for notice in result["notices"]:
            gr.Info(notice)
        timing = (
            f"First words after {result['first_sentence_ms']:.0f} ms (first token "
            f"{result['time_to_first_token_ms']:.0f} ms, picture {result['image_ms']:.0f} ms, "
            f"{result['tiles']} tiles); all {result['tokens']} word pieces"
            f" after {result['latency_ms']:.0f} ms" + (" · stopped" if result["stopped"] else "")
        )
        yield (
            result["text"],
            live_region(result["text"], self.announce_id),
            gr.skip(),
            timing,
            runtime_badge(result["runtime"]),
            result,
        )
