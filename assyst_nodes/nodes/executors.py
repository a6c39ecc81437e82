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
    """The (workers, resubmit) of a stage: a config's own, else ``workers`` and one resubmission.

    Parameters
    ----------
    executor : ExecutorLike
        The stage's executor: an :class:`~assyst_nodes.runtime.executors.ExecutorConfig`
        brings its own ``workers`` and ``resubmit``; anything else (instructions, a live
        executor, ``None``) does not.
    workers : int
        The stage's ``workers`` input, used unless ``executor`` is a config.

    Returns
    -------
    workers : int
        Chunks of work that run at once.
    resubmit : int
        Times a chunk whose worker or scheduler job was lost is sent again.
    """
    if isinstance(executor, ExecutorConfig):
        return executor.workers, executor.resubmit
    return workers, 1


def local_processes(workers: int = 2) -> ExecutorInstructions:
    """Instructions for a local ``ProcessPoolExecutor`` of ``workers`` processes.

    Parameters
    ----------
    workers : int, default 2
        Worker processes (``max_workers``), an int >= 1.

    Returns
    -------
    pyiron_workflow.ExecutorInstructions
        Picklable instructions; the pool is built where the stage runs and shut down after it.

    Raises
    ------
    ValueError
        ``workers`` is not an int >= 1.
    """
    check_workers(workers, None)
    return ExecutorInstructions(ProcessPoolExecutor, kwargs={"max_workers": workers})


def single_node(workers: int = 2) -> ExecutorInstructions:
    """Instructions for ``executorlib.SingleNodeExecutor`` with ``workers`` one-core workers.

    The workers stay alive for the whole stage (``block_allocation``: Python and the stage's
    modules are imported once per worker, not once per chunk).

    Parameters
    ----------
    workers : int, default 2
        One-core workers (``max_workers``), an int >= 1.

    Returns
    -------
    pyiron_workflow.ExecutorInstructions
        Picklable instructions; the executor is built where the stage runs and shut down after
        it.

    Raises
    ------
    ImportError
        executorlib is not installed.
    ValueError
        ``workers`` is not an int >= 1.
    """
    import executorlib

    check_workers(workers, None)
    return ExecutorInstructions(
        executorlib.SingleNodeExecutor,
        kwargs={"max_workers": workers, "block_allocation": True},
    )


@contextmanager
def open_executor(executor: ExecutorLike) -> Iterator[Executor | None]:
    """The executor to hand to a core stage, as a context manager.

    Built (and shut down when the context ends) from a config or instructions, passed through
    (and left open) if live, ``None`` for none.

    Parameters
    ----------
    executor : ExecutorLike
        An :class:`~assyst_nodes.runtime.executors.ExecutorConfig` (e.g. ``LocalProcesses(4)``,
        ``Slurm("partition", ...)``), ``pyiron_workflow.ExecutorInstructions`` (e.g.
        :func:`local_processes`), a live ``concurrent.futures.Executor`` or ``None``.

    Yields
    ------
    concurrent.futures.Executor or None
        The live executor; ``None`` for ``executor=None`` (the core stage then uses its own
        ``workers`` local processes).

    Raises
    ------
    TypeError
        ``executor`` is none of these.
    """
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
