"""The body of every Ray Serve deployment: any `studio.services` class, served as it is.

A replica builds the service on its own `LoadedModels`, one per model a user picked (`@serve.multiplexed`: requests
for a model go to a replica that has it loaded, the least recently used model is unloaded), and runs the service's
methods in a worker thread. The graphs named in the deployment's settings (the image and text encoders) are wrapped
so that concurrent requests' encoder calls are gathered into one batch (`@serve.batch`); each result says which
replica ran it and the batch sizes its encoder calls ran in.

Imported only inside Ray (and by `studio.serving.cluster` when it deploys), never by the app in-process.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import tempfile
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from ray import serve

from studio.errors import StudioError
from studio.services.base import LoadedModels, Runtime
from studio.serving.settings import DeploymentSettings

DEFAULT_MODEL = "default"  # the multiplexed model id of requests that leave the model unset


@dataclass(frozen=True)
class ShippedFile:
    """A file the app sends to a cluster on another machine, which cannot read the app's paths."""

    name: str
    data: bytes


@dataclass(frozen=True)
class Raised:
    """A user's error raised by the service in the replica, carried back to be raised again in the app."""

    error: StudioError


def model_id_of(kwargs: dict) -> str:
    """The multiplexed model id of a call: the model its `runtime` names, else `DEFAULT_MODEL`."""
    runtime = kwargs.get("runtime")
    return (runtime.model if isinstance(runtime, Runtime) else None) or DEFAULT_MODEL


class BatchedGraph:
    """A graph whose `run` goes through the replica's batcher; everything else is the wrapped backend's."""

    def __init__(self, inner, name: str, submit) -> None:
        self.inner = inner
        self.name = name
        self._submit = submit

    def run(self, inputs: dict) -> dict:
        return self._submit(self.inner, self.name, inputs)

    def __getattr__(self, name):
        return getattr(self.inner, name)


class BatchingModels(LoadedModels):
    """`LoadedModels` whose tasks' named graphs are batched across concurrent requests."""

    def __init__(self, models_dir: Path, graph_names: tuple[str, ...], submit, size: int = 3) -> None:
        super().__init__(models_dir, size=size)
        self._graph_names = graph_names
        self._submit = submit
        self._wrap_lock = threading.Lock()

    def get(self, task_class, runtime: Runtime = Runtime(), progress=None):
        task = super().get(task_class, runtime, progress)
        graphs = getattr(getattr(task, "graphs", None), "graphs", None)
        if graphs is not None and self._graph_names:
            with self._wrap_lock:
                for name in self._graph_names:
                    graph = graphs.get(name)
                    if graph is not None and not isinstance(graph, BatchedGraph):
                        graphs[name] = BatchedGraph(graph, name, self._submit)
        return task


def _signature(inputs: dict) -> tuple:
    """Inputs that can be stacked into one batch share their names, dtypes and shapes beyond the first axis."""
    return tuple(sorted((k, np.asarray(v).dtype.str, np.asarray(v).shape[1:]) for k, v in inputs.items()))


def run_batch(graph, requests: list[dict]) -> list[dict]:
    """Runs several requests' inputs of one graph as one call, and splits the outputs back by request."""
    if len(requests) == 1:
        return [graph.run(requests[0])]
    sizes = [len(next(iter(r.values()))) for r in requests]
    stacked = {k: np.concatenate([np.asarray(r[k]) for r in requests]) for k in requests[0]}
    outputs = graph.run(stacked)
    total, bounds = sum(sizes), np.cumsum([0, *sizes])
    return [
        {k: v[bounds[i] : bounds[i + 1]] if np.ndim(v) and len(v) == total else v for k, v in outputs.items()}
        for i in range(len(requests))
    ]


class ServiceReplica:
    """One replica of a task's deployment.

    Args:
        service_path: "module:Class" of the `studio.services` class to serve.
        task: The task's name (for sentences and the serving report).
        models_dir: The models folder (exports, local model copies) as the replica's machine sees it.
        settings: The task's deployment settings.
    """

    def __init__(self, service_path: str, task: str, models_dir: str, settings: DeploymentSettings) -> None:
        module, _, name = service_path.partition(":")
        self.service_class = getattr(importlib.import_module(module), name)
        self.task = task
        self.models_dir = Path(models_dir)
        self.settings = settings
        self._loop: asyncio.AbstractEventLoop | None = None
        # Requests wait in their threads for their batch, so batches run on threads of their own (sharing one pool
        # would let waiting requests take every thread and no batch could run).
        self._requests = ThreadPoolExecutor(max(1, settings.max_ongoing_requests), thread_name_prefix="studio-request")
        self._batches = ThreadPoolExecutor(1, thread_name_prefix="studio-batch")
        self._local = threading.local()
        self._graph_calls = Counter()  # encoder calls actually run, by graph name
        self._batched_requests = Counter()  # encoder calls asked for, by graph name
        self.encode.set_max_batch_size(settings.max_batch_size)
        self.encode.set_batch_wait_timeout_s(settings.batch_wait_s)

        async def service_for(model_id: str):
            """A service with its own loaded models for one picked model (unloaded with it)."""
            models = BatchingModels(self.models_dir, tuple(self.settings.batch), self._submit, size=1)
            return self.service_class(models)

        # Wired here, not on the class, so each task's max_models comes from its settings row.
        self.service_for = serve.multiplexed(max_num_models_per_replica=max(1, settings.max_models))(service_for)

    async def call(self, method: str, args: tuple, kwargs: dict):
        """Runs `service.method(*args, **kwargs)` in a worker thread and returns its plain data (or `Raised`)."""
        self._loop = asyncio.get_running_loop()
        service = await self.service_for(serve.get_multiplexed_model_id() or DEFAULT_MODEL)
        return await self._loop.run_in_executor(self._requests, self._run, service, method, args, kwargs)

    def _run(self, service, method: str, args: tuple, kwargs: dict):
        self._local.batches = []
        with tempfile.TemporaryDirectory(prefix="studio-serve-") as scratch:
            args = tuple(_received(a, scratch) for a in args)
            kwargs = {k: _received(v, scratch) for k, v in kwargs.items()}
            try:
                result = getattr(service, method)(*args, **kwargs)
            except StudioError as exc:
                return Raised(exc)
        if isinstance(result, dict):
            context = serve.get_replica_context()
            result["serving"] = {
                "engine": "Ray Serve",
                "task": self.task,
                "replica": context.replica_id.unique_id,
                "pid": os.getpid(),
                "batches": list(self._local.batches),
            }
        return result

    def _submit(self, graph, name: str, inputs: dict) -> dict:
        """Called from a request's worker thread: hands the graph call to the batcher on the replica's loop."""
        outputs, size = asyncio.run_coroutine_threadsafe(self.encode((graph, name, inputs)), self._loop).result()
        if hasattr(self._local, "batches"):  # a thread the service started itself reports nowhere
            self._local.batches.append({"graph": name, "requests": size})
        return outputs

    @serve.batch(max_batch_size=8, batch_wait_timeout_s=0.01)
    async def encode(self, items: list[tuple]) -> list[tuple[dict, int]]:
        """Runs the graph calls gathered from concurrent requests: one call per graph and input shape."""
        groups: dict[tuple, list[int]] = {}
        for i, (graph, _, inputs) in enumerate(items):
            groups.setdefault((id(graph), _signature(inputs)), []).append(i)
        results: list = [None] * len(items)
        for indices in groups.values():
            graph, name = items[indices[0]][0], items[indices[0]][1]
            batch = [items[i][2] for i in indices]
            outputs = await asyncio.get_running_loop().run_in_executor(self._batches, run_batch, graph, batch)
            self._graph_calls[name] += 1
            self._batched_requests[name] += len(indices)
            for i, out in zip(indices, outputs):
                results[i] = (out, len(indices))
        return results

    def stats(self) -> dict:
        """Encoder calls run and requests they served, by graph; this replica's id and process."""
        return {
            "replica": serve.get_replica_context().replica_id.unique_id,
            "pid": os.getpid(),
            "graph_calls": dict(self._graph_calls),
            "requests": dict(self._batched_requests),
        }


def _received(value, scratch: str):
    """A shipped file written into the request's scratch folder (its path is what the service reads)."""
    if isinstance(value, ShippedFile):
        path = Path(scratch) / Path(value.name).name
        path.write_bytes(value.data)
        return str(path)
    return value
