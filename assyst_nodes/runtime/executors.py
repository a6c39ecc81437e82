"""Where a stage's chunks of work run: small frozen configs that build the executor there.

A config is a plain value (hashable, picklable, equal by value), so a graph, a settings file or
a project can hold it; :meth:`ExecutorConfig.open` builds the live
``concurrent.futures.Executor`` where the stage runs and shuts it down after it::

    LocalProcesses(4)                                   # 4 local worker processes
    Slurm("debug", workers=8, memory=2.0, run_time=3600)
                                                        # SLURM jobs of 1 core, 2 GB, 1 h

Every stage that fans out (sample, relax, label) takes one as ``executor``, each with its own
resources: e.g. sampling local, relaxation and labelling on SLURM. Results are the same bit for
bit whatever runs them. A chunk lost on its executor (its worker or SLURM job died, was
cancelled, ran past its wall time, never started) is submitted again ``resubmit`` times, then
its structures are reported lost (``worker_lost``); a rerun into a project computes only them.

Only the configs are defined here; executorlib (and pysqa, for SLURM) are imported by ``open``.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import subprocess
import tempfile
import threading
import time
import uuid
import warnings
from abc import ABC, abstractmethod
from collections.abc import Iterator
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from ..validation import check_real
from .fanout import check_resubmit, check_workers, process_pool

__all__ = [
    "EXECUTOR_KINDS",
    "GPU_TEMPLATE",
    "ExecutorConfig",
    "LocalProcesses",
    "Slurm",
    "executor_config",
]


class ExecutorConfig(ABC):
    """Where the chunks of a stage run (see the module docstring); the base of the configs.

    Subclasses (:class:`LocalProcesses`, :class:`Slurm`) are frozen dataclasses with at least
    the fields ``workers`` (int: chunks that run at once; sets how many chunks the work is cut
    into) and ``resubmit`` (int: times a lost chunk is submitted again before its structures
    count as lost), and a class attribute ``kind``, their name in :data:`EXECUTOR_KINDS`.
    """

    kind: ClassVar[str] = ""
    workers: int
    resubmit: int

    def _check(self) -> None:
        check_workers(self.workers, None)
        check_resubmit(self.resubmit)

    @abstractmethod
    def open(self) -> contextlib.AbstractContextManager[Executor | None]:
        """The live executor (``None``: the stage's own ``workers`` in this process), shut
        down when the context ends."""


@dataclass(frozen=True)
class LocalProcesses(ExecutorConfig):
    """``workers`` local processes (one BLAS thread each); one worker runs in the calling
    process.

    Inside :func:`~assyst_nodes.runtime.fanout.shared_workers` the stages share one pool of
    ``workers`` processes; otherwise each stage starts and stops its own
    (:func:`~assyst_nodes.runtime.fanout.process_pool`).

    Parameters
    ----------
    workers : int, default 1
        Processes that run chunks at once, an int >= 1. ``1``: the chunks run in the calling
        process, no pool is started.
    resubmit : int, default 1
        Times a chunk whose process died is submitted again (an int >= 0) before its
        structures are reported lost.

    Raises
    ------
    ValueError
        If ``workers`` is not an int >= 1 or ``resubmit`` not an int >= 0.
    """

    kind: ClassVar[str] = "local"
    workers: int = 1
    resubmit: int = 1

    def __post_init__(self) -> None:
        self._check()

    @contextlib.contextmanager
    def open(self) -> Iterator[Executor | None]:
        if self.workers == 1:
            yield None
            return
        with process_pool(self.workers) as pool:
            yield pool


UNAVAILABLE = (
    "ReqNodeNotAvail",
    "NodeDown",
    "PartitionDown",
    "PartitionInactive",
    "DRAINED",
    "drained",
    "Nodes required for job are DOWN",
)
"""Parts of a SLURM pending reason that mean the job cannot start until someone acts (a
drained or down node, a partition switched off), unlike waiting for free resources."""


GPU_TEMPLATE = """\
#!/bin/bash
#SBATCH --output=time.out
#SBATCH --job-name={{job_name}}
#SBATCH --chdir={{working_directory}}
#SBATCH --get-user-env=L
#SBATCH --partition={{partition}}
#SBATCH --gres=gpu:{gpus}
{%- if run_time_max %}
#SBATCH --time={{ [1, run_time_max // 60]|max }}
{%- endif %}
{%- if dependency_list %}
#SBATCH --dependency=afterok:{{ dependency_list | join(',') }}
{%- endif %}
{%- if memory_max %}
#SBATCH --mem={{memory_max}}G
{%- endif %}
#SBATCH --ntasks={{cores}}

{{command}}
"""
"""The SLURM job script of a job with GPUs (``{gpus}`` is replaced by their number): pysqa's
default SLURM script, whose jinja2 fields executorlib fills, plus ``--gres=gpu:N``."""


@dataclass(frozen=True)
class Slurm(ExecutorConfig):
    """SLURM through executorlib's ``SlurmClusterExecutor``: one SLURM job per chunk.

    The jobs run with one BLAS/OpenMP thread per core and the ``python`` of this process; they
    need the working directory on a file system the nodes share. executorlib (and pysqa) are
    imported only when the executor is opened.

    Parameters
    ----------
    partition : str, default ""
        The SLURM partition to submit to (``sinfo`` lists them). Required: the empty default
        raises ``ValueError``, since sbatch refuses an empty partition.
    workers : int, default 2
        Chunks the work is cut into per round, an int >= 1: about two chunks per worker are
        made, and SLURM runs as many of them at once as the partition has room for.
    cores : int, default 1
        Cores of each job, an int >= 1. The chunk runs on one; ask for more for a calculator
        that uses them (each job gets as many BLAS/OpenMP threads).
    memory : float or None, optional
        Memory of each job (GB, rounded up to a whole GB), > 0. Default: ``None`` (the
        partition's default).
    run_time : float or None, optional
        Wall time of each job (s), > 0; at least 60 s are asked for (shorter limits are raised
        to 60 s). Default: ``None`` (the partition's limit).
    resubmit : int, default 2
        Times a lost chunk (its job died, was cancelled, ran past its wall time or never
        started) is submitted again, an int >= 0, before its structures are reported lost.
    pending_timeout : float or None, optional
        Time (s), > 0, that the jobs may all wait in the queue for a node that cannot run them
        (drained, down; see :data:`UNAVAILABLE`) before they are cancelled (scancel) and their
        chunks fail as lost (then resubmitted up to ``resubmit`` times). Default: ``None``
        (wait as SLURM does).
    cache_directory : str or None, optional
        Folder for executorlib's task files, which the SLURM jobs must see; it is kept.
        Default: ``None`` (a temporary folder in the working directory, removed after the
        stage).
    gpus : int, default 0
        GPUs of each job (``#SBATCH --gres=gpu:N``), an int >= 0, e.g. for a MACE fit on a GPU
        partition. executorlib's SLURM backend (pysqa) drops its ``gpus_per_core`` resource,
        so a job with GPUs is submitted with :data:`GPU_TEMPLATE` as its
        ``submission_template``, the resource that pysqa renders.

    Raises
    ------
    ValueError
        If ``partition`` is empty or not a string; ``workers`` or ``cores`` not an int >= 1;
        ``resubmit`` not an int >= 0; ``memory``, ``run_time`` or ``pending_timeout`` not > 0.
    TypeError
        If ``memory``, ``run_time`` or ``pending_timeout`` is neither a real number nor
        ``None``.
    """

    kind: ClassVar[str] = "slurm"
    partition: str = ""
    workers: int = 2
    cores: int = 1
    memory: float | None = None
    run_time: float | None = None
    resubmit: int = 2
    pending_timeout: float | None = None
    cache_directory: str | None = None
    gpus: int = 0

    def __post_init__(self) -> None:
        self._check()
        if isinstance(self.gpus, bool) or not isinstance(self.gpus, int) or self.gpus < 0:
            raise ValueError(
                f"Slurm.gpus must be an integer >= 0 (GPUs per job), got {self.gpus!r}"
            )
        if not isinstance(self.partition, str) or not self.partition.strip():
            raise ValueError(
                f"Slurm needs the partition to submit to (sinfo lists them), got "
                f"{self.partition!r}"
            )
        check_workers(self.cores, None)
        for name, unit in (("memory", "GB"), ("run_time", "s"), ("pending_timeout", "s")):
            value = getattr(self, name)
            if value is None:
                continue
            check_real(name, value, f"a number > 0 ({unit}) or None")
            if not value > 0:
                raise ValueError(f"{name} must be > 0 ({unit}) or None, got {value!r}")

    def resource_dict(self, job_name: str) -> dict[str, Any]:
        """executorlib's ``resource_dict`` of one task."""
        resources: dict[str, Any] = {
            "cores": self.cores,
            "partition": self.partition,
            "job_name": job_name,
        }
        if self.run_time is not None:
            resources["run_time_max"] = int(max(60, self.run_time))
        if self.memory is not None:
            resources["memory_max"] = max(1, math.ceil(self.memory))
        if self.gpus:
            resources["submission_template"] = GPU_TEMPLATE.replace("{gpus}", str(self.gpus))
        return resources

    @contextlib.contextmanager
    def open(self) -> Iterator[Executor | None]:
        import executorlib

        folder = self.cache_directory
        made = folder is None
        if made:
            folder = tempfile.mkdtemp(prefix="assyst-slurm-", dir=Path.cwd())
        name = f"assyst-{uuid.uuid4().hex[:10]}"
        threads = {k: os.environ.get(k) for k in _THREAD_VARIABLES}
        os.environ.update(dict.fromkeys(_THREAD_VARIABLES, str(self.cores)))  # sbatch exports
        try:
            with warnings.catch_warnings():  # executorlib does not list "partition"; pysqa uses it
                warnings.filterwarnings("ignore", "The following keys are not recognized")
                inner = executorlib.SlurmClusterExecutor(
                    cache_directory=folder, resource_dict=self.resource_dict(name)
                )
            with SlurmJobs(inner, name, self.pending_timeout, self.workers) as executor:
                yield executor
        finally:
            for key, value in threads.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
            if made:
                shutil.rmtree(folder, ignore_errors=True)


_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def squeue(job_name: str) -> list[tuple[str, str, str]] | None:
    """(job id, state, reason) of the queued and running jobs named ``job_name`` (None when
    squeue does not answer, e.g. while slurmctld restarts)."""
    try:
        done = subprocess.run(
            ["squeue", "-h", "-n", job_name, "-o", "%i|%T|%r"],
            capture_output=True, text=True, timeout=30, check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0:
        return None
    return [tuple(line.split("|", 2)) for line in done.stdout.splitlines() if line.count("|") == 2]


class SlurmJobs(Executor):
    """executorlib's SLURM executor (one job per task, named ``job_name``) with a watch on the
    queue: when every job of ours is pending for a reason in :data:`UNAVAILABLE` for
    ``pending_timeout`` s, the waiting tasks are cancelled (scancel) and fail with the reason,
    so the stage can resubmit or report them instead of waiting for ever. ``workers`` tells the
    fan-out how many chunks to make (two per worker: ``benchmarks/RESULTS.md`` compares chunk
    counts per SLURM job)."""

    chunks_per_worker = 2

    def __init__(
        self, inner: Executor, job_name: str, pending_timeout: float | None, workers: int
    ) -> None:
        self.workers = workers
        self.inner = inner
        self.job_name = job_name
        self.pending_timeout = pending_timeout
        self._futures: dict[Future[Any], Future[Any]] = {}  # ours -> executorlib's
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._watch: threading.Thread | None = None
        if pending_timeout is not None:
            self._watch = threading.Thread(target=self._watch_queue, daemon=True)
            self._watch.start()

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Future[Any]:
        """Submit ``fn`` with its arguments as a SLURM job; a future of our own, failed by
        the queue watch when its job cannot start."""
        ours: Future[Any] = Future()
        theirs = self.inner.submit(fn, *args, **kwargs)
        with self._lock:
            self._futures[ours] = theirs

        def done(future: Future[Any]) -> None:
            with self._lock:
                self._futures.pop(ours, None)
            if ours.done():
                return
            if future.cancelled():
                ours.set_exception(RuntimeError("the SLURM job was cancelled"))
            elif future.exception() is not None:
                ours.set_exception(future.exception())
            else:
                ours.set_result(future.result())

        theirs.add_done_callback(done)
        return ours

    def _watch_queue(self) -> None:
        stalled_since: float | None = None
        poll = min(5.0, max(0.5, (self.pending_timeout or 5.0) / 6))
        while not self._stop.wait(poll):
            jobs = squeue(self.job_name)
            if jobs is None:  # the controller does not answer: say nothing now
                continue
            pending = [j for j in jobs if j[1] == "PENDING"]
            stuck = pending and len(pending) == len(jobs) and all(
                any(word in reason for word in UNAVAILABLE) for _, _, reason in pending
            )
            if not stuck:
                stalled_since = None
                continue
            now = time.monotonic()
            stalled_since = now if stalled_since is None else stalled_since
            if now - stalled_since < (self.pending_timeout or 0.0):
                continue
            reason = pending[0][2]
            ids = ", ".join(j[0] for j in pending)
            with self._lock:
                waiting = list(self._futures.items())
            for ours, theirs in waiting:
                if not ours.done():
                    ours.set_exception(
                        RuntimeError(
                            f"SLURM job(s) {ids} pending for {now - stalled_since:.0f} s: "
                            f"{reason}"
                        )
                    )
                theirs.cancel()
            subprocess.run(["scancel", "-n", self.job_name], capture_output=True, check=False)
            stalled_since = None

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop the queue watch and executorlib's executor."""
        self._stop.set()
        self.inner.shutdown(wait=wait, cancel_futures=cancel_futures)


EXECUTOR_KINDS: dict[str, type[ExecutorConfig]] = {
    LocalProcesses.kind: LocalProcesses,
    Slurm.kind: Slurm,
}
"""Executor configs by the name the command line and settings files use."""


def executor_config(kind: str, **options: Any) -> ExecutorConfig:
    """The config of ``kind`` with ``options``: how the command line and settings files build one.

    Parameters
    ----------
    kind : str
        A key of :data:`EXECUTOR_KINDS`: ``"local"`` (:class:`LocalProcesses`) or ``"slurm"``
        (:class:`Slurm`).
    **options
        Fields of that config, e.g. ``workers=4`` or ``partition="debug"``.

    Returns
    -------
    ExecutorConfig
        ``EXECUTOR_KINDS[kind](**options)``.

    Raises
    ------
    ValueError
        If ``kind`` is unknown or an option is not a field of its config (the message names it
        and what is valid), or the config refuses a value.
    TypeError
        If the config refuses the type of a value (e.g. :class:`Slurm`'s ``memory="2"``).
    """
    if kind not in EXECUTOR_KINDS:
        raise ValueError(
            f"executor must be one of {', '.join(EXECUTOR_KINDS)}, got {kind!r}"
        )
    cls = EXECUTOR_KINDS[kind]
    valid = sorted(name for name in cls.__dataclass_fields__)
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise ValueError(f"unknown {kind} executor options {unknown}; valid: {valid}")
    return cls(**options)
