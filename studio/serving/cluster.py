"""Ray Serve for the app: start or join a Ray instance, deploy each task's service on first use, hand out proxies.

Nothing listens beyond this machine's loopback: a local instance binds to 127.0.0.1, with no dashboard, no HTTP
proxy (the app calls deployments through handles) and no usage statistics.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from pathlib import Path

from studio.errors import ServingError
from studio.serving.settings import DeploymentSettings, ServingPlan, settings_for

log = logging.getLogger(__name__)

MODES = ("inprocess", "ray", "auto")
APP_PREFIX = "studio-"
_STATUS_EVERY_S = 5.0  # how stale the replica counts shown in the badge may be


def service_task(service_class) -> str:
    """A service's task name: its module's TASK ("zero-shot"), else the module's name with dashes."""
    module = sys.modules[service_class.__module__]
    return getattr(module, "TASK", None) or service_class.__module__.rpartition(".")[2].replace("_", "-")


def _studio_root() -> Path:
    """The folder holding the `studio` package (what workers on this machine put on their path)."""
    return Path(__file__).resolve().parents[2]


class RayServing:
    """The app's link to Ray Serve: deployments made on first use, their handles, replica counts.

    Args:
        plan: The mode, address and settings overrides (`--serve`, `--ray-address`, `--serve-config`).
        models_dir: The models folder replicas load from (the same path on a cluster's machines, or a shared disk).
    """

    def __init__(self, plan: ServingPlan, models_dir: Path) -> None:
        self.plan = plan
        self.models_dir = Path(models_dir)
        self.started_ray = False
        self.remote = bool(plan.address and plan.address.startswith("ray://"))
        self.on_cuda = False
        self._handles: dict[str, object] = {}
        self._deploy_lock = threading.Lock()
        self._status: tuple[float, dict] = (0.0, {})

    def connect(self, num_cpus: int | None = None) -> RayServing:
        """Starts a local Ray instance (no address) or joins the one at the plan's address, and starts Serve.

        Args:
            num_cpus: Cores a local instance may use (None: all).

        Raises:
            ServingError: Ray is not installed, or the cluster cannot be reached or started.
        """
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        try:
            import ray
            from ray import serve
        except ImportError:
            raise ServingError(
                "Ray Serve is not installed here; install it with: pip install 'ray[serve]==2.60.0'."
            ) from None
        address = self.plan.address
        if address and address != "auto" and not address.startswith("ray://"):
            raise ServingError(
                f"--ray-address takes auto or ray://host:10001 (a cluster's Ray Client port), not {address}."
            )
        try:
            if not ray.is_initialized():
                ray.init(**self._init_options(num_cpus))
                self.started_ray = True
            serve.start(proxy_location="Disabled")
            self.on_cuda = ray.cluster_resources().get("GPU", 0) > 0
        except Exception as exc:  # noqa: BLE001 - any failure to reach or start Ray is said in one sentence
            if self.started_ray:
                ray.shutdown()
                self.started_ray = False
            raise ServingError(_unreachable(address, exc)) from None
        return self

    def _init_options(self, num_cpus: int | None) -> dict:
        env = {"RAY_USAGE_STATS_ENABLED": "0"}
        if self.remote:  # the cluster's machines get the studio package from here
            runtime_env = {"py_modules": [str(_studio_root() / "studio")], "env_vars": env}
        else:
            runtime_env = {"env_vars": {**env, "PYTHONPATH": _pythonpath()}}
        options = {"address": self.plan.address, "runtime_env": runtime_env, "log_to_driver": False}
        if not self.plan.address:
            options.update(num_cpus=num_cpus, include_dashboard=False, _node_ip_address="127.0.0.1")
        return options

    def settings(self, task: str) -> DeploymentSettings:
        """The task's deployment settings (the table's row, or the --serve-config file's)."""
        return settings_for(task, self.plan.overrides)

    def handle(self, service_class, progress=None):
        """The deployment handle of a service's task, deploying it the first time (with progress)."""
        task = service_task(service_class)
        if task in self._handles:
            return self._handles[task]
        with self._deploy_lock:
            if task not in self._handles:
                if progress is not None:
                    progress(0.05, f"Starting the {task} service on Ray Serve…")
                self._handles[task] = self._deploy(service_class, task)
        return self._handles[task]

    def _deploy(self, service_class, task: str):
        from ray import serve

        from studio.serving.replica import ServiceReplica

        settings = self.settings(task)
        options = settings.deployment_options(self.on_cuda)
        if not self.remote:
            options["ray_actor_options"]["runtime_env"]["env_vars"]["PYTHONPATH"] = _pythonpath()
        deployment = serve.deployment(ServiceReplica, name=task).options(**options)
        path = f"{service_class.__module__}:{service_class.__qualname__}"
        started = time.perf_counter()
        try:
            app = deployment.bind(path, task, str(self.models_dir), settings)
            handle = serve.run(app, name=APP_PREFIX + task, route_prefix=None)
        except Exception as exc:  # noqa: BLE001 - a deployment that cannot start is said in one sentence
            reason = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
            raise ServingError(f"The {task} service could not start on Ray Serve ({reason.rstrip('.')}).") from None
        log.info("deployed %s on Ray Serve in %.1f s", task, time.perf_counter() - started)
        return handle

    def replicas(self, task: str) -> int:
        """Running replicas of a task's deployment (refreshed every few seconds)."""
        at, counts = self._status
        if time.monotonic() - at > _STATUS_EVERY_S:
            from ray import serve

            counts = {}
            try:
                for name, app in serve.status().applications.items():
                    for deployment in app.deployments.values():
                        counts[name] = deployment.replica_states.get("RUNNING", 0)
            except Exception:  # noqa: BLE001 - the badge then shows the settings' count
                log.info("could not read Ray Serve's status", exc_info=True)
            self._status = (time.monotonic(), counts)
        settings = self.settings(task)
        return counts.get(APP_PREFIX + task) or (settings.min_replicas if settings.max_replicas else settings.replicas)

    def label(self, task: str) -> str:
        """'Ray Serve · 2 replicas', for the runtime badge."""
        n = self.replicas(task)
        return f"Ray Serve · {n} replica{'s' if n != 1 else ''}"

    def describe(self) -> dict:
        """Where the app is served, for `studio models` and the logs."""
        return {
            "engine": "Ray Serve",
            "address": self.plan.address or "local instance (127.0.0.1)",
            "cuda": self.on_cuda,
            "deployed": sorted(self._handles),
        }

    def shutdown(self) -> None:
        """Removes this app's deployments; stops Ray when this app started it."""
        import ray
        from ray import serve

        try:
            if self.started_ray:
                serve.shutdown()
            else:
                for task in list(self._handles):
                    serve.delete(APP_PREFIX + task)
        finally:
            self._handles.clear()
            if self.started_ray:
                ray.shutdown()
                self.started_ray = False


def _unreachable(address: str | None, exc: Exception) -> str:
    """One sentence for a Ray instance that cannot be joined or started."""
    if address == "auto" and isinstance(exc, ConnectionError):
        return "No running Ray cluster was found on this machine (start one with: ray start --head)."
    reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0].split(". ")[0][:160].rstrip(".")
    if address:
        return f"The Ray cluster at {address} cannot be reached ({reason})."
    return f"A local Ray instance could not be started ({reason})."


def _pythonpath() -> str:
    parts = [str(_studio_root()), os.environ.get("PYTHONPATH", "")]
    return os.pathsep.join(p for p in parts if p)


def start_serving(plan: ServingPlan, models_dir: Path, num_cpus: int | None = None) -> tuple[RayServing | None, str]:
    """Serving for `studio --serve MODE`: a connected `RayServing`, or None for in-process, and a sentence saying which.

    Raises:
        ServingError: `--serve ray` and Ray Serve cannot be reached or started (with `auto`, the app runs
            in-process instead and the sentence says why).
    """
    if plan.mode not in MODES:
        raise ServingError(f"--serve takes one of {', '.join(MODES)}, not “{plan.mode}”.")
    if plan.mode == "inprocess":
        return None, "Every task runs in this process."
    try:
        serving = RayServing(plan, models_dir).connect(num_cpus)
    except ServingError as exc:
        if plan.mode == "auto":
            return None, f"{exc} Every task runs in this process instead."
        raise
    return serving, f"Tasks are served on Ray Serve ({serving.describe()['address']})."
