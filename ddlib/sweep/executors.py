"""Where a sweep's jobs run: submitit executors (SLURM on a cluster, local processes on a workstation)
built from :class:`ExecutorSettings`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ddlib.core.cache import cache_root

EXECUTORS = ("sequential", "local", "slurm", "auto")


@dataclass(frozen=True)
class ExecutorSettings:
    """Where jobs run and with what resources (the SLURM options are ignored by the local executor)."""

    kind: str = "local"               # "local", "slurm" or "auto" (SLURM when sbatch is found, else local)
    folder: str | None = None         # job logs and pickles; default <cache>/sweep-logs
    partition: str | None = None
    gpus_per_job: int = 1
    cpus_per_job: int = 4
    time_limit_min: int = 240
    array_parallelism: int = 16
    workers: int = 1                  # local executor: jobs at once (one GPU each when there are GPUs)
    extra_slurm: dict[str, Any] = field(default_factory=dict)


def make_executor(settings: ExecutorSettings):
    """A submitit executor for ``settings``."""
    import submitit
    # one folder for all jobs: submitit names each job's files by its id (a "%j" folder would be
    # created literally before any id is known)
    folder = Path(settings.folder or cache_root() / "sweep-logs")
    cluster = None if settings.kind == "auto" else settings.kind
    executor = submitit.AutoExecutor(folder=folder, cluster=cluster)
    params: dict[str, Any] = {"timeout_min": settings.time_limit_min, "cpus_per_task": settings.cpus_per_job,
                              "gpus_per_node": settings.gpus_per_job, "name": "ddlib-sweep"}
    if executor.cluster == "slurm":
        params["slurm_array_parallelism"] = settings.array_parallelism
        if settings.partition:
            params["slurm_partition"] = settings.partition
        params.update({f"slurm_{k}" if not k.startswith("slurm_") else k: v for k, v in settings.extra_slurm.items()})
    executor.update_parameters(**params)
    return executor

