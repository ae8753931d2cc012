"""Per-task Ray Serve deployment settings, in one table (and a TOML file that overrides rows: `--serve-config`).

A service with no row gets `DEFAULT`: a new service is served with no code and no row; a row only tunes it.
"""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

from studio.errors import StudioError


@dataclass(frozen=True)
class DeploymentSettings:
    """How one task's service is deployed on Ray Serve.

    Attributes:
        replicas: Fixed number of replicas (ignored when `max_replicas` is set: then autoscaling decides).
        min_replicas: Autoscaling: the fewest replicas kept (0 lets an idle task give its memory back).
        max_replicas: Autoscaling: the most replicas; None for a fixed number of replicas.
        target_ongoing_requests: Autoscaling: requests per replica it aims for; more add a replica.
        num_cpus: CPU cores Ray reserves per replica (fractions allowed); also the replica's ONNX Runtime and torch
            threads (at least 1), so two replicas on two cores do not fight over them.
        num_gpus: GPU share per replica on a CUDA machine (0.25: four replicas share one GPU); 0 on CPU machines.
        max_ongoing_requests: Requests one replica takes at once; the rest wait in Ray's queue.
        batch: Graphs whose calls are gathered into one batch (`@serve.batch`) across concurrent requests, e.g.
            ("image_encoder", "text_encoder"): camera frames of many viewers run as one encoder call.
        max_batch_size: The largest batch.
        batch_wait_s: How long the first request of a batch waits for others (the latency batching may add).
        max_models: Models one replica keeps loaded (`@serve.multiplexed`): requests for a model go to a replica
            that has it, and the least recently used is unloaded beyond this many.
        in_process: Methods that stay in the app's process (training, files the user makes, live objects with state).
        served: False keeps the whole service in the app's process.
    """

    replicas: int = 1
    min_replicas: int = 1
    max_replicas: int | None = None
    target_ongoing_requests: float = 2.0
    num_cpus: float = 0.5
    num_gpus: float = 0.0
    max_ongoing_requests: int = 8
    batch: tuple[str, ...] = ()
    max_batch_size: int = 8
    batch_wait_s: float = 0.01
    max_models: int = 2
    in_process: tuple[str, ...] = ()
    served: bool = True

    def actor_options(self, on_cuda: bool) -> dict:
        """Ray's per-replica resources and the thread counts its libraries should use."""
        threads = str(max(1, round(self.num_cpus)))
        options = {
            "num_cpus": self.num_cpus,
            "runtime_env": {
                "env_vars": {"STUDIO_ONNX_THREADS": threads, "OMP_NUM_THREADS": threads, "RAY_USAGE_STATS_ENABLED": "0"}
            },
        }
        if on_cuda and self.num_gpus:
            options["num_gpus"] = self.num_gpus
        return options

    def deployment_options(self, on_cuda: bool) -> dict:
        """Keyword arguments of `serve.deployment(...).options`."""
        options = {"max_ongoing_requests": self.max_ongoing_requests, "ray_actor_options": self.actor_options(on_cuda)}
        if self.max_replicas:
            options["autoscaling_config"] = {
                "min_replicas": self.min_replicas,
                "max_replicas": self.max_replicas,
                "target_ongoing_requests": self.target_ongoing_requests,
            }
        else:
            options["num_replicas"] = self.replicas
        return options

    def summary(self) -> dict:
        """The row as plain data (for `studio models`)."""
        data = asdict(self)
        data["batch"], data["in_process"] = list(self.batch), list(self.in_process)
        return data


# Encoders that pay for batching: one bigger call costs less than several small ones.
_ENCODERS = ("image_encoder", "text_encoder")

DEFAULT = DeploymentSettings()

# One row per task (the service module's TASK). Deployed on first use. Replicas take half a core (one thread) each,
# so a two-core laptop runs two replicas side by side; on a bigger box raise num_cpus/num_gpus with --serve-config.
SETTINGS: dict[str, DeploymentSettings] = {
    # Photos and camera frames from many viewers: two replicas, encoder calls batched.
    "zero-shot": DeploymentSettings(
        replicas=2, num_cpus=0.5, num_gpus=0.25, batch=_ENCODERS, max_batch_size=8, batch_wait_s=0.01, max_models=3
    ),
    "caption": DeploymentSettings(min_replicas=1, max_replicas=2, num_gpus=0.25),
    "vqa": DeploymentSettings(num_gpus=0.25),
    "speech-to-text": DeploymentSettings(num_cpus=0.25, num_gpus=0.125),
    "video": DeploymentSettings(num_gpus=0.25, max_ongoing_requests=4),
    # Teaching fusion heads writes the user's heads into the models folder: it stays in the app's process.
    "av-events": DeploymentSettings(num_gpus=0.25, batch=("image_encoder",), in_process=("teach",)),
    "read-text": DeploymentSettings(num_gpus=0.25),
    # Search: gallery indexing embeds many pictures; its encoder calls are batched like the camera's.
    "search": DeploymentSettings(num_gpus=0.25, batch=_ENCODERS, max_batch_size=16),
    # Fine-tuning makes and saves the user's classifiers: it stays in the app's process.
    "classifiers": DeploymentSettings(served=False),
}


def settings_for(task: str, overrides: dict[str, DeploymentSettings] | None = None) -> DeploymentSettings:
    """The settings of a task: the override's row, else the table's, else `DEFAULT`."""
    return (overrides or {}).get(task) or SETTINGS.get(task) or DEFAULT


def read_config(path: Path) -> dict[str, DeploymentSettings]:
    """Rows of a `--serve-config` TOML file, each over the table's row of that task.

    The file has one table per task, with any of `DeploymentSettings`' fields::

        [zero-shot]
        replicas = 4
        num_gpus = 0.5

    Raises:
        StudioError: The file is missing, is not TOML, or names a field that does not exist.
    """
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib

    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError:
        raise StudioError(f"The serving settings file {path} cannot be read.") from None
    except tomllib.TOMLDecodeError as exc:
        raise StudioError(f"The serving settings file {path} is not valid TOML ({exc}).") from None
    known = {f.name: f for f in fields(DeploymentSettings)}
    rows = {}
    for task, row in data.items():
        if not isinstance(row, dict):
            raise StudioError(f"In {path}, “{task}” must be a table of settings, like [{task}] then replicas = 2.")
        unknown = sorted(set(row) - set(known))
        if unknown:
            raise StudioError(
                f"In {path}, [{task}] has settings that do not exist: {', '.join(unknown)}; "
                f"the settings are {', '.join(known)}."
            )
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in row.items()}
        rows[task] = replace(settings_for(task), **values)
    return rows


@dataclass
class ServingPlan:
    """What `--serve` asked for: the mode, the cluster's address, and the settings rows that override the table."""

    mode: str = "inprocess"
    address: str | None = None
    overrides: dict[str, DeploymentSettings] = field(default_factory=dict)

    def table(self) -> dict[str, dict]:
        """Every task's settings as plain data (the table's rows, overridden)."""
        tasks = dict.fromkeys([*SETTINGS, *self.overrides])
        return {task: self.table_row(task) for task in tasks}

    def table_row(self, task: str) -> dict:
        """One task's settings as plain data."""
        return settings_for(task, self.overrides).summary()
