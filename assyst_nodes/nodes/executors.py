"""Executors for fanning a stage out: local processes, executorlib, SLURM or flux.

A stage node takes ``executor: ExecutorConfig | ExecutorInstructions | Executor | None``.
A config (:mod:`assyst_nodes.runtime.executors`: ``LocalProcesses``, ``Slurm`` with its
resources) or instructions (a class plus its arguments) are what a graph should hold: they pickle,
so the node
itself can still be sent to another process, and the executor is built where the stage runs and
shut down after it. A live executor is used as given and left open. Examples::

    Slurm("debug", workers=8, memory=2.0, run_time=3600)   # SLURM jobs, lost ones resubmitted
    local_processes(4)                       # ProcessPoolExecutor, 4 workers
    single_node(4)                           # executorlib.SingleNodeExecutor, 4 workers
    pwf.ExecutorInstructions(                # executorlib on SLURM: one job per task
        executorlib.SlurmClusterExecutor,
        kwargs={"resource_dict": {"cores": 1, "partition": "cpu", "run_time_max": 3600}},
    )
    pwf.ExecutorInstructions(                # inside a flux allocation
        executorlib.FluxJobExecutor, kwargs={"max_workers": 64}
    )
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import Executor, ProcessPoolExecutor
from contextlib import contextmanager

from pyiron_workflow import ExecutorInstructions

from ..runtime.executors import ExecutorConfig
from ..runtime.fanout import check_workers

__all__ = ["ExecutorLike", "fan_out_options", "local_processes", "open_executor", "single_node"]

ExecutorLike = ExecutorConfig | ExecutorInstructions | Executor | None
"""What a stage node's ``executor`` input accepts."""


def fan_out_options(executor: ExecutorLike, workers: int) -> tuple[int, int]:
    """(workers, resubmit) of a stage: a config's own, else ``workers`` and one resubmission."""
    if isinstance(executor, ExecutorConfig):
        return executor.workers, executor.resubmit
    return workers, 1


def local_processes(workers: int = 2) -> ExecutorInstructions:
    """Instructions for a local ``ProcessPoolExecutor`` of ``workers`` processes."""
    check_workers(workers, None)
    return ExecutorInstructions(ProcessPoolExecutor, kwargs={"max_workers": workers})


def single_node(workers: int = 2) -> ExecutorInstructions:
    """Instructions for ``executorlib.SingleNodeExecutor`` with ``workers`` one-core workers
    that stay alive for the whole stage (``block_allocation``: Python and the stage's modules
    are imported once per worker, not once per chunk)."""
    import executorlib

    check_workers(workers, None)
    return ExecutorInstructions(
        executorlib.SingleNodeExecutor,
        kwargs={"max_workers": workers, "block_allocation": True},
    )


@contextmanager
def open_executor(executor: ExecutorLike) -> Iterator[Executor | None]:
    """The executor to hand to a core stage: built (and later shut down) from instructions,
    passed through if live, ``None`` for none."""
    if executor is None or isinstance(executor, Executor):
        yield executor
        return
    if isinstance(executor, ExecutorConfig):
        with executor.open() as live:
            yield live
        return
    if not isinstance(executor, ExecutorInstructions):
        raise TypeError(
            "executor must be an assyst_nodes.runtime.executors config (LocalProcesses(4), "
            "Slurm('partition', ...)), pyiron_workflow.ExecutorInstructions (e.g. "
            "assyst_nodes.nodes.local_processes(4)), a concurrent.futures.Executor or None, "
            f"got {executor!r}"
        )
    with executor.instantiate() as live:
        yield live
