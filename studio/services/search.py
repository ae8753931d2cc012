"""Search: index a folder's photos, video moments and sounds, and find them by words or by an example picture; pick
the sentence that fits a photo; measure Recall@K on image-caption pairs. The whole job behind the Search tab,
`studio index ...` and `studio search ...`.

Photos and video frames are embedded with the zero-shot model's (CLIP's) image encoder and searched with its text
encoder; with a CLAP model chosen, an index holds sounds (CLAP's audio encoder) and is searched with CLAP's text
encoder. An index remembers its model and revision: searching it with another model is refused with a sentence
(the two models' vectors are not comparable), and building it again with the new model is offered.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np

from studio.errors import ModelUnavailableError, StudioError
from studio.progress import Progress, no_progress, scaled
from studio.search.embedding import (
    BATCH,
    DEFAULT_FRAME_EVERY_S,
    HOLDS_PICTURES,
    HOLDS_SOUNDS,
    FolderFile,
    ImageTextEmbedder,
    SoundTextEmbedder,
    scan_folder,
)
from studio.search.store import (
    CorruptIndexError,
    IndexStore,
    SavedIndex,
    SearchError,
    clean_index_name,
    folder_for,
    new_meta,
    touched,
)
from studio.services.base import LoadedModels, Runtime, Service, model_name, model_revision, ran_on
from studio.sharing import LOCAL, SharingPolicy

TASK = "search"
MAX_TOP_K = 100
MAX_SENTENCES = 1000
MAX_QUERY_CHARS = 1000
_SOUND_TASK = "studio.tasks.sound_events:SoundEventsTask"


class IndexingStopped(SearchError):
    """Stop was pressed before any file was embedded; nothing was saved."""


def checked_folder(folder, sharing: SharingPolicy = LOCAL) -> Path:
    """A folder a user typed or chose, as an absolute path that exists and is a folder.

    Every folder input of the search (the tab's box, `--folder`, an index's saved folder) passes through here: the one
    place a policy on which folders may be read (a shared app) is applied.

    Raises:
        SearchError: Empty, missing, or not a folder.
        RefusedError: A shared app, and the folder lies outside the folders the presenter allowed.
    """
    text = str(folder or "").strip()
    if sharing.shared:
        text = str(sharing.check_folder(text, "folder to search"))
    if not text:
        raise SearchError("Choose a folder to index: type its path, for example /home/me/Pictures.")
    path = Path(text).expanduser()
    if not path.exists():
        raise SearchError(f"The folder {path} was not found; check the path.")
    if not path.is_dir():
        raise SearchError(f"{path} is a file, not a folder; give the folder that holds your photos.")
    return path.resolve()


def parse_sentences(sentences: str | list[str] | None) -> list[str]:
    """Sentences typed one per line (commas stay inside a sentence), or a list.

    Raises:
        SearchError: Fewer than two, or too many.
    """
    lines = sentences.splitlines() if isinstance(sentences, str) else list(sentences or [])
    out = list(dict.fromkeys(" ".join(str(s).split()) for s in lines if str(s).strip()))
    if len(out) < 2:
        raise SearchError(
            "Type at least two sentences, one per line, for the photo to choose between, for example: "
            "a cat on a sofa / a cup of coffee."
        )
    if len(out) > MAX_SENTENCES:
        raise SearchError(f"That is {len(out)} sentences; Studio compares at most {MAX_SENTENCES} at a time.")
    return out


def _count(n: int, one: str, many: str | None = None) -> str:
    return f"{n:,} {one if n == 1 else (many or one + 's')}"


def holdings(counts: dict) -> str:
    """What an index holds in words: "1,204 photos and 3 videos (412 moments)"."""
    parts = []
    if counts["photos"] or not (counts["videos"] or counts["sounds"]):
        parts.append(_count(counts["photos"], "photo"))
    if counts["videos"]:
        parts.append(f"{_count(counts['videos'], 'video')} ({_count(counts['video_frames'], 'moment')})")
    if counts["sounds"]:
        parts.append(f"{_count(counts['sounds'], 'sound')} ({_count(counts['sound_windows'], 'stretch', 'stretches')})")
    return " and ".join(parts)


def indexed_sentence(counts: dict, skipped: dict[str, str]) -> str:
    """ "Indexed 1,204 photos; skipped 3 files that are not photos or videos: a.txt, b.doc, c.zip." from an index's
    counts and the skipped files (file -> "reason" or "reason: the sentence why")."""
    sentence = "Indexed " + holdings(counts)
    if skipped:
        groups: dict[str, list[str]] = {}
        for file, reason in skipped.items():
            groups.setdefault(reason.split(": ")[0], []).append(file)

        def listed(files: list[str]) -> str:
            return ", ".join(files[:5]) + (f" and {len(files) - 5:,} more" if len(files) > 5 else "")

        def that(n: int, reason: str) -> str:
            return f"{'is' if n == 1 else 'are'} {reason}"

        if len(groups) == 1:
            ((reason, files),) = groups.items()
            sentence += f"; skipped {_count(len(files), 'file')} that {that(len(files), reason)}: {listed(files)}"
        else:
            pieces = [
                f"{len(files):,} that {that(len(files), reason)} ({listed(files)})" for reason, files in groups.items()
            ]
            sentence += f"; skipped {_count(len(skipped), 'file')}: " + ", ".join(pieces[:-1]) + " and " + pieces[-1]
    return sentence + "."


def skipped_rows(skipped: dict[str, str]) -> list[dict]:
    """The skipped files as plain data: file, reason and (for a file that could not be read) the sentence why."""
    rows = []
    for file, reason in skipped.items():
        short, _, detail = reason.partition(": ")
        rows.append({"file": file, "reason": short, **({"detail": detail} if detail else {})})
    return rows


class SearchService(Service):
    """Builds, updates and searches the indexes under `<models-dir>/indexes/`.

    Args:
        models: The process's loaded models (the index's model is loaded through them, shared with other tabs).
    """

    TASK_CLASS = "studio.tasks.zero_shot:ZeroShotTask"

    def __init__(self, models: LoadedModels) -> None:
        super().__init__(models)
        self.store = IndexStore(models.models_dir)

    # Models -------------------------------------------------------------------------------------------------------

    def holds_for(self, model: str | None) -> str:
        """What an index built with this model holds: photos and videos (CLIP-style), or sounds (CLAP).

        Raises:
            ModelUnavailableError: Neither kind of model (the sentence says which models work).
        """
        from studio.sources import resolve

        try:
            resolve(model, "zero-shot", self.models.models_dir)
            return HOLDS_PICTURES
        except ModelUnavailableError as first:
            try:
                source = resolve(model, "av-events", self.models.models_dir)
            except ModelUnavailableError:
                raise first from None
            if source.family != "clap":
                raise ModelUnavailableError(
                    "This sound model names sounds but cannot compare them with words; search sounds with a CLAP "
                    "model, such as laion/clap-htsat-unfused."
                ) from None
            return HOLDS_SOUNDS

    def embedder(self, runtime: Runtime, holds: str, progress: Progress = no_progress):
        """The loaded embedder for an index's model: its task loaded once and shared with the other tabs."""
        if holds == HOLDS_SOUNDS:
            from studio.tasks.sound_events import SoundEventsTask

            return SoundTextEmbedder(self.models.get(SoundEventsTask, runtime, progress))
        return ImageTextEmbedder(self.task(runtime, progress))

    def _index_embedder(self, saved_meta: dict, runtime: Runtime, progress: Progress):
        """The embedder of an index's own model; another model chosen is refused with a sentence."""
        built_with = saved_meta["model"]
        if runtime.model and runtime.model.strip() and runtime.model.strip() != built_with:
            raise SearchError(
                f"The index “{saved_meta['name']}” was built with {built_with}; its vectors cannot be compared with "
                f"{runtime.model}'s. Search it with {built_with}, or build it again with {runtime.model} (Rebuild)."
            )
        embedder = self.embedder(replace(runtime, model=built_with), saved_meta["holds"], progress)
        revision = model_revision(embedder.task)
        if saved_meta.get("revision") and revision and revision != saved_meta["revision"]:
            raise SearchError(
                f"The index “{saved_meta['name']}” was built with another revision of {built_with} than the one "
                "loaded now; build it again (Rebuild) so its vectors match the model."
            )
        return embedder

    # Indexes ------------------------------------------------------------------------------------------------------

    def names(self) -> list[str]:
        """The names of the indexes kept in this models directory."""
        return self.store.names()

    def info(self, name: str) -> dict:
        """What an index holds, its model, folder and FAISS index (verified against its checksums).

        Raises:
            SearchError: No such index, or it is damaged.
        """
        return {"task": TASK, **self.store.load(name).info(), "notices": []}

    def remove(self, name: str) -> dict:
        """Deletes an index (never the files it was built from)."""
        name = clean_index_name(name)
        self.store.remove(name)
        uploads = self.uploads_dir(name)
        if uploads.is_dir():
            shutil.rmtree(uploads, ignore_errors=True)
        return {"task": TASK, "removed": name, "notices": []}

    def uploads_dir(self, name: str) -> Path:
        """Where files uploaded into an index are kept (the index points at them, so they must outlive the upload)."""
        return self.models.models_dir / "search-uploads" / folder_for(clean_index_name(name))

    def add_uploads(self, name: str, files: list) -> Path:
        """Copies uploaded files into the index's uploads folder; returns that folder."""
        target = self.uploads_dir(name)
        target.mkdir(parents=True, exist_ok=True)
        for file in files:
            source = Path(getattr(file, "name", file))
            if source.is_file():
                shutil.copyfile(source, target / source.name)
        return target

    def build(
        self,
        name: str,
        folder=None,
        *,
        files: list | None = None,
        runtime: Runtime = Runtime(),
        frame_every_s: float | None = None,
        rebuild: bool = False,
        ray_address: str | None = None,
        progress: Progress = no_progress,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> dict:
        """Builds an index of a folder (or of uploaded files), or brings an existing one up to date.

        Files whose content is unchanged keep their vectors; new and changed files are embedded; removed files are
        dropped. Stop keeps the files finished so far (the index is saved whole with them; update it to add the rest).

        Args:
            name: The index's name.
            folder: The folder to index; None to re-use the index's own folder (an update).
            files: Uploaded files instead of a folder (copied into the index's uploads folder).
            runtime: The model and where it runs; None model: the index's own (or the default zero-shot model).
            frame_every_s: Seconds between the video frames kept (default 2, or the index's own).
            rebuild: Embed everything again (another model, or a fresh start).
            ray_address: Embed the photos with Ray Data on this Ray cluster ("local" starts one on this computer).
            progress: Receives fractions and sentences.
            should_stop: Polled between batches; True stops and keeps what is finished.

        Returns:
            {"task", "name", "message", "index" (its info), "embedded", "reused", "dropped", "skipped", "stopped",
            "seconds", model and runtime fields, "notices"}

        Raises:
            SearchError: Bad name or folder, an empty folder, another model than the index's without rebuild.
        """
        started = time.perf_counter()
        name = clean_index_name(name)
        notices: list[str] = []
        old: SavedIndex | None = None
        old_meta: dict | None = None
        if self.store.exists(name):
            old_meta = self.store.meta(name)
            if not rebuild:
                try:
                    old = self.store.load(name)
                except CorruptIndexError as exc:
                    notices.append(f"{exc} It was built again from its folder.")
        if files:
            folder = self.add_uploads(name, files)
        elif not str(folder or "").strip() and old_meta is not None:
            folder = old_meta["folder"]
        folder = checked_folder(folder, self.models.sharing)
        model = runtime.model.strip() if runtime.model and runtime.model.strip() else None
        if old is not None and model and model != old.meta["model"]:
            raise SearchError(
                f"The index “{name}” was built with {old.meta['model']}; to use {model}, build it again with that "
                "model (Rebuild): every file is embedded anew."
            )
        model = model or (old_meta or {}).get("model")
        holds = self.holds_for(model)
        every = float(frame_every_s or (old_meta or {}).get("frame_every_s") or DEFAULT_FRAME_EVERY_S)
        if not 0.1 <= every <= 3600:
            raise SearchError("Keep one video frame every 0.1 to 3,600 seconds.")
        progress(0.0, "Looking through the folder…")
        scan = scan_folder(folder, holds, should_stop)
        if not scan.files:
            what = "sound files" if holds == HOLDS_SOUNDS else "photos or videos"
            extra = f" ({_count(len(scan.skipped), 'other file')} left out)" if scan.skipped else ""
            raise SearchError(f"The folder {folder} holds no {what} to index{extra}.")
        embedder = self.embedder(replace(runtime, model=model), holds, scaled(progress, 0.0, 0.05))
        revision = model_revision(embedder.task)
        if old is not None and (old.meta.get("frame_every_s") != every or old.meta.get("revision") != revision):
            notices.append("The model's revision or the frame spacing changed, so every file was embedded anew.")
            old = None
        reusable = self._reusable(old)
        keep_items, keep_vectors, todo = [], [], []
        for file in scan.files:
            rows = reusable.get((file.file, file.sha256))
            if rows:
                keep_items += [old.items[r] for r in rows]
                keep_vectors.append(old.vectors[rows])
            else:
                todo.append(file)
        previous = {i["file"] for i in old.items} if old is not None else set()
        dropped = len(previous - {f.file for f in scan.files})
        new_items, new_vectors, stopped = self._embed(
            embedder, todo, every, scan.skipped, notices, ray_address, runtime, scaled(progress, 0.05, 0.9), should_stop
        )
        items = keep_items + new_items
        if not items:
            if stopped:
                raise IndexingStopped("Stopped before any file was indexed; nothing was saved.")
            raise SearchError(
                indexed_sentence(_empty_counts(), scan.skipped).replace("Indexed 0 photos", "Indexed nothing")
            )
        vectors = np.concatenate([v for v in keep_vectors + new_vectors if len(v)]).astype(np.float32)
        from studio.search.vectors import build_vector_index

        vector_index = build_vector_index(vectors, progress=scaled(progress, 0.9, 0.99))
        meta = new_meta(name, model_name(embedder.task), revision, holds, folder, every)
        if old_meta is not None:
            meta = touched({**meta, "created": old_meta.get("created", meta["created"])})
        meta["faiss"] = vector_index.settings()
        saved = SavedIndex(meta, items, vectors, vector_index)
        self.store.save(saved)
        progress(1.0, "Index saved.")
        message = indexed_sentence(saved.counts(), scan.skipped)
        if stopped:
            done = len({i["file"] for i in items})
            message = (
                f"Stopped after {done:,} of {len(scan.files):,} files; the index holds those. Update it to add the "
                "rest. " + message
            )
        return {
            "task": TASK,
            "name": name,
            "message": message,
            "index": saved.info(),
            "embedded": len(new_items),
            "reused": len(keep_items),
            "dropped_files": dropped,
            "skipped": skipped_rows(scan.skipped),
            "stopped": stopped,
            "seconds": round(time.perf_counter() - started, 3),
            **ran_on(embedder.task),
            "notices": embedder.task.graphs.notices + notices,
        }

    def update(self, name: str, folder=None, **options) -> dict:
        """Brings an index up to date with its folder (or a new one): embeds only new or changed files, drops removed
        ones. Takes `build`'s options."""
        name = clean_index_name(name)
        if not self.store.exists(name):
            raise self.store.missing(name)
        return self.build(name, folder, **options)

    @staticmethod
    def _reusable(old: SavedIndex | None) -> dict[tuple[str, str], list[int]]:
        out: dict[tuple[str, str], list[int]] = {}
        if old is not None:
            for row, item in enumerate(old.items):
                out.setdefault((item["file"], item["sha256"]), []).append(row)
        return out

    def _embed(
        self,
        embedder,
        todo: list[FolderFile],
        every: float,
        skipped: dict[str, str],
        notices: list[str],
        ray_address: str | None,
        runtime: Runtime,
        progress: Progress,
        should_stop: Callable[[], bool],
    ) -> tuple[list[dict], list[np.ndarray], bool]:
        """Embeds files: photos batched across files (or on Ray), videos and sounds one file at a time; a file that
        cannot be read is skipped with its reason. Returns (items, vectors, stopped)."""
        photos = [f for f in todo if f.kind == "photo"]
        others = [f for f in todo if f.kind != "photo"]
        items: list[dict] = []
        vectors: list[np.ndarray] = []
        total = max(len(todo), 1)
        done = 0
        if photos and ray_address:
            from studio.search.ray_embedding import embed_photos_on_ray

            progress(0.0, f"Embedding {len(photos):,} photos on Ray…")
            found, failed = embed_photos_on_ray(
                [f.path for f in photos],
                replace(runtime, model=model_name(embedder.task)),
                self.models.models_dir,
                ray_address,
            )
            for f, vector in zip(photos, found):
                if vector is None:
                    skipped[f.file] = failed.get(str(f.path), "not readable")
                else:
                    items.append({"file": f.file, "sha256": f.sha256, "kind": "photo", "time_s": None})
                    vectors.append(vector[None, :])
            done += len(photos)
            photos = []
        for start in range(0, len(photos), BATCH):
            if should_stop():
                return items, vectors, True
            batch_items, pictures = [], []
            for f in photos[start : start + BATCH]:
                try:
                    for item, picture in embedder.file_items(f, every, notices):
                        batch_items.append(item)
                        pictures.append(picture)
                except StudioError as exc:
                    skipped[f.file] = _reason(exc)
            if pictures:
                vectors.append(embedder.pictures(pictures))
                items += batch_items
            done += len(photos[start : start + BATCH])
            progress(done / total, f"Embedded {done:,} of {len(todo):,} files…")
        for f in others:
            if should_stop():
                return items, vectors, True
            file_items, file_vectors, batch_items, pictures = [], [], [], []
            try:
                for item, picture in embedder.file_items(f, every, notices):
                    batch_items.append(item)
                    pictures.append(picture)
                    if len(pictures) == BATCH:
                        file_vectors.append(embedder.pictures(pictures))
                        file_items += batch_items
                        batch_items, pictures = [], []
                        if should_stop():
                            return items, vectors, True  # the unfinished file is left for the next update
                if pictures:
                    file_vectors.append(embedder.pictures(pictures))
                    file_items += batch_items
            except StudioError as exc:
                skipped[f.file] = _reason(exc)
                continue
            finally:
                done += 1
                progress(done / total, f"Embedded {done:,} of {len(todo):,} files…")
            if not file_items:
                skipped[f.file] = "silent throughout" if f.kind == "sound" else "without pictures"
                continue
            items += file_items
            vectors += file_vectors
        return items, vectors, False

    # Searching ----------------------------------------------------------------------------------------------------

    def search(
        self,
        name: str,
        *,
        text: str | None = None,
        image=None,
        top_k: int = 10,
        runtime: Runtime = Runtime(),
        describe: bool = False,
        caption_model: str | None = None,
        channel_order: str = "RGB",
        progress: Progress = no_progress,
    ) -> dict:
        """The index's files (and moments) most like typed words or an example picture.

        Args:
            name: The index.
            text: Words to search for (text → photos, video moments or sounds).
            image: A picture to search with (photo → photos and moments); path, bytes, PIL image or array.
            top_k: How many results (1 to 100).
            runtime: Where the index's model runs (a model other than the index's own is refused).
            describe: Also caption each photo and video moment with the Caption tab's model (a "caption" per result).
            caption_model: The captioning model (default: the Caption tab's default).
            channel_order: "RGB", or "BGR" for OpenCV frames.
            progress: Receives fractions and sentences while the model loads.

        Returns:
            {"task", "name", "query", "results": [{"rank", "file", "path", "kind", "time_s", "time", "score"}],
            "search" (the index in words), "latency_ms", model and runtime fields, "notices"}

        Raises:
            SearchError: No query or both, an empty query, no index, a damaged index, another model.
        """
        from studio.media.image import load_image

        if not 1 <= int(top_k) <= MAX_TOP_K:
            raise SearchError(f"Ask for between 1 and {MAX_TOP_K} results.")
        query_text = " ".join(str(text or "").split())
        if image is None and not query_text:
            raise SearchError("Type what to look for, or give a photo to find ones like it.")
        if image is not None and query_text:
            raise SearchError("Search with words or with a photo, not both at once.")
        if len(query_text) > MAX_QUERY_CHARS:
            raise SearchError(f"The search text is {len(query_text)} characters long; keep it under {MAX_QUERY_CHARS}.")
        saved = self.store.load(name)
        if image is not None and saved.meta["holds"] == HOLDS_SOUNDS:
            raise SearchError(f"The index “{saved.name}” holds sounds; search it with words, not a photo.")
        picture = load_image(image, channel_order) if image is not None else None
        embedder = self._index_embedder(saved.meta, runtime, progress)
        begun = time.perf_counter()
        query = embedder.texts([query_text]) if picture is None else embedder.pictures([picture])
        scores, ids = saved.vector_index.search(query, int(top_k))
        latency = (time.perf_counter() - begun) * 1000
        folder = Path(saved.meta["folder"])
        results = []
        for rank, (score, row) in enumerate(zip(scores[0].tolist(), ids[0].tolist()), 1):
            if row < 0:
                continue
            item = saved.items[row]
            results.append(result_row(rank, item, folder, score))
        notices = list(embedder.task.graphs.notices)
        if describe:
            notices += self._describe(results, replace(runtime, model=caption_model), progress)
        return {
            "task": TASK,
            "name": saved.name,
            "query": {"text": query_text} if picture is None else {"image": True},
            "results": results,
            "search": saved.vector_index.describe(),
            "latency_ms": round(latency, 2),
            **ran_on(embedder.task),
            "notices": notices,
        }

    def _describe(self, results: list[dict], runtime: Runtime, progress: Progress) -> list[str]:
        """Adds a "caption" to each photo and video moment result; a captioning problem becomes a notice."""
        from studio.services.caption import CaptionService

        captioner = CaptionService(self.models)
        for row in results:
            if row["kind"] == "sound":
                continue
            try:
                row["caption"] = captioner(result_picture(row), runtime=runtime, progress=progress)["caption"]
            except StudioError as exc:
                return [f"The results could not be described in words: {exc}"]
        return []

    def match_sentences(
        self,
        image,
        sentences: str | list[str],
        *,
        runtime: Runtime = Runtime(),
        channel_order: str = "RGB",
        progress: Progress = no_progress,
    ) -> dict:
        """Image → text: the sentences a user typed or loaded, ranked by how well each fits the photo.

        Returns:
            {"task", "sentences": [{"sentence", "score" (cosine similarity), "probability" (softmax over the
            sentences with the model's logit scale)}] best first, "latency_ms", model and runtime fields, "notices"}
        """
        from studio.media.image import load_image
        from studio.scores import softmax

        if image is None:
            raise SearchError("Give a photo (upload one or take a camera snapshot) to match sentences to.")
        lines = parse_sentences(sentences)
        picture = load_image(image, channel_order)
        embedder = self.embedder(runtime, HOLDS_PICTURES, progress)
        begun = time.perf_counter()
        image_vector = embedder.pictures([picture])[0].astype(np.float64)
        cosine = embedder.texts(lines).astype(np.float64) @ image_vector
        probability = softmax(embedder.task.logit_scale * cosine)
        order = np.argsort(-cosine, kind="stable")
        return {
            "task": TASK,
            "sentences": [
                {"sentence": lines[i], "score": round(float(cosine[i]), 5), "probability": float(probability[i])}
                for i in order
            ],
            "latency_ms": round((time.perf_counter() - begun) * 1000, 2),
            **ran_on(embedder.task),
            "notices": embedder.task.graphs.notices,
        }

    def evaluate(
        self,
        pairs_file,
        *,
        runtime: Runtime = Runtime(),
        plot: Path | None = None,
        progress: Progress = no_progress,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> dict:
        """Recall@1/5/10 both ways and median rank on image-caption pairs (`studio.search.metrics`), with the model.

        Args:
            pairs_file: CSV of `image path, caption` rows.
            runtime: The model to measure.
            plot: Also write recall against K as a PNG here.

        Returns:
            {"task", "pairs", "images", "captions", "text_to_image", "image_to_text" (each R@1/5/10, median_rank,
            curve), "summary" (a sentence), "plot", model and runtime fields, "notices"}
        """
        from studio.media.image import load_image
        from studio.search.metrics import metrics_sentence, read_pairs, recall_figure, retrieval_metrics

        pairs_file = Path(pairs_file)
        pairs = read_pairs(pairs_file)
        # the folder policy applies to what a pairs file points at, as to indexing
        for folder in {pairs_file.parent, *(p.parent for p in pairs.images)}:
            checked_folder(folder, self.models.sharing)
        embedder = self.embedder(runtime, HOLDS_PICTURES, scaled(progress, 0.0, 0.1))
        image_vectors = []
        for start in range(0, len(pairs.images), BATCH):
            if should_stop():
                raise SearchError("Stopped before every image was read; no recall was measured.")
            image_vectors.append(embedder.pictures([load_image(p) for p in pairs.images[start : start + BATCH]]))
            done = min(start + BATCH, len(pairs.images))
            progress(0.1 + 0.8 * done / len(pairs.images), f"Read {done:,} of {len(pairs.images):,} images…")
        text_vectors = embedder.texts(pairs.captions)
        metrics = retrieval_metrics(np.concatenate(image_vectors), text_vectors, pairs.caption_image)
        written = None
        if plot is not None:
            from studio.atomic import replaced_on_success

            plot = Path(plot)
            with replaced_on_success(plot) as tmp:
                recall_figure(metrics).savefig(tmp, format="png")
            written = str(plot)
        progress(1.0, "Measured.")
        return {
            "task": TASK,
            "pairs": str(pairs_file),
            "images": len(pairs.images),
            "captions": len(pairs.captions),
            **metrics,
            "summary": metrics_sentence(metrics),
            "plot": written,
            **ran_on(embedder.task),
            "notices": embedder.task.graphs.notices,
        }


def result_row(rank: int, item: dict, folder: Path, score: float) -> dict:
    """One search result as plain data."""
    from studio.media.video import clock

    t = item.get("time_s")
    return {
        "rank": rank,
        "file": item["file"],
        "path": str(folder / item["file"]),
        "kind": item["kind"],
        "time_s": t,
        "time": clock(t) if t is not None else None,
        "score": round(float(score), 5),
    }


def result_picture(row: dict):
    """The picture of a photo or video-moment result (a PIL image or an RGB array), read from its file.

    Raises:
        BadImageError, BadVideoError: The file changed or went away since it was indexed.
    """
    from studio.media.image import load_image

    if row["kind"] == "video":
        from studio.media.video import frame_at

        return frame_at(row["path"], row["time_s"] or 0.0)
    return load_image(Path(row["path"]))


def _reason(exc: StudioError) -> str:
    return f"not readable: {exc}"


def _empty_counts() -> dict:
    return {"photos": 0, "videos": 0, "video_frames": 0, "sounds": 0, "sound_windows": 0, "vectors": 0}
