"""The service a tab calls when tasks are served on Ray Serve: the same calls as the in-process service.

Methods that return plain data (annotated `-> dict`) go to the task's deployment; the rest (a loaded task, a live
listener, the saved classifiers' names) and the methods a settings row keeps in process run on the in-process service.
A replica that died is retried once, after Ray has had a moment to restart it; if it is still down the call ends in a
sentence and the app keeps serving.
"""

from __future__ import annotations

import inspect
import logging
import time
from pathlib import Path

from studio.errors import ServingError

log = logging.getLogger(__name__)

RETRY_AFTER_S = 2.0  # Ray restarts a dead replica within seconds
RESTART_WAIT_S = 60.0  # how long the retry may wait for the restarted replica


def returns_data(service_class, name: str) -> bool:
    """Whether a public method of a service returns plain data (its annotation is dict)."""
    if name.startswith("_") and name != "__call__":
        return False
    method = getattr(service_class, name, None)
    if not callable(method):
        return False
    annotation = inspect.signature(method).return_annotation
    return annotation is dict or (isinstance(annotation, str) and annotation.split("[")[0] == "dict")


class ServedService:
    """A service whose data-returning methods run on its task's Ray Serve deployment.

    Args:
        local: The in-process service (for what stays in the app's process).
        serving: The app's `studio.serving.cluster.RayServing`.
    """

    def __init__(self, local, serving) -> None:
        from studio.serving.cluster import service_task

        self._local = local
        self._serving = serving
        self.task_name = service_task(type(local))
        self._in_process = set(serving.settings(self.task_name).in_process)
        self._inner: dict[str, ServedService] = {}

    def __call__(self, *args, **kwargs):
        return self._remote("__call__", args, kwargs)

    def __getattr__(self, name: str):
        from studio.services.base import Service

        value = getattr(self._local, name)
        if name in self._in_process:
            return value
        if isinstance(value, Service):  # a service inside a service (Ask's speech to text) has its own deployment
            if name not in self._inner:
                self._inner[name] = ServedService(value, self._serving)
            return self._inner[name]
        if returns_data(type(self._local), name):
            return lambda *args, **kwargs: self._remote(name, args, kwargs)
        return value

    def _remote(self, method: str, args: tuple, kwargs: dict):
        from studio.serving.replica import Raised, model_id_of

        progress = kwargs.pop("progress", None)
        if self._serving.remote:
            args, kwargs = tuple(map(_shipped, args)), {k: _shipped(v) for k, v in kwargs.items()}
        handle = self._serving.handle(type(self._local), progress).options(multiplexed_model_id=model_id_of(kwargs))
        result = self._call(handle, method, args, kwargs)
        if isinstance(result, Raised):
            raise result.error
        if isinstance(result, dict) and isinstance(result.get("runtime"), dict) and "label" in result["runtime"]:
            result["runtime"] = {**result["runtime"], "served_on": self._serving.label(self.task_name)}
            result["runtime"]["label"] = f"{result['runtime']['served_on']} · {result['runtime']['label']}"
        return result

    def _call(self, handle, method: str, args: tuple, kwargs: dict):
        from ray.exceptions import RayActorError, WorkerCrashedError
        from ray.serve.exceptions import DeploymentUnavailableError, ReplicaUnavailableError

        died = (RayActorError, WorkerCrashedError, ReplicaUnavailableError, DeploymentUnavailableError)
        restarting = f"The {self.task_name} service is restarting, try again in a moment."
        try:
            return handle.call.remote(method, args, kwargs).result()
        except died as exc:
            log.warning("a %s replica died (%s); retrying once", self.task_name, type(exc).__name__)
        time.sleep(RETRY_AFTER_S)
        try:
            return handle.call.remote(method, args, kwargs).result(timeout_s=RESTART_WAIT_S)
        except (*died, TimeoutError) as exc:
            log.warning("the %s service is still down: %s", self.task_name, type(exc).__name__)
            raise ServingError(restarting) from None


def _shipped(value):
    """A path to a file on this machine, as bytes the cluster's machines can write down."""
    from studio.serving.replica import ShippedFile

    if isinstance(value, (str, Path)) and len(str(value)) < 4096:
        path = Path(value)
        try:
            if path.is_absolute() and path.is_file():
                return ShippedFile(path.name, path.read_bytes())
        except OSError:
            return value
    return value
