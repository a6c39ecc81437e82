"""Fan a stage's work out in chunks: in this process, over local processes, or any Executor.

Results come back in input order whatever ran them, so a stage's output does not depend on the
number of workers. Local pools fork a single-threaded process and otherwise use a fork server
(see :func:`process_pool`); scripts that use ``workers > 1`` inside a graph therefore need the
usual ``if __name__ == "__main__":`` guard.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import multiprocessing
import os
import pickle
import socket
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import (
    FIRST_COMPLETED,
    Executor,
    Future,
    ProcessPoolExecutor,
    wait,
)
from dataclasses import dataclass
from typing import Any, TypeVar

from threadpoolctl import threadpool_limits

from .futures_internals import executor_workers, pool_broken
from .progress import progress_bar

__all__ = [
    "STAGE_MODULES",
    "Execution",
    "auto_chunksize",
    "call_single_threaded",
    "check_resubmit",
    "check_workers",
    "in_order",
    "map_chunks",
    "new_process_pool",
    "process_pool",
    "run_chunk",
    "shared_workers",
    "single_threaded",
    "warm_workers",
    "where",
]

T = TypeVar("T")
R = TypeVar("R")


def check_workers(workers: int, chunksize: int | None) -> None:
    """Raise ``ValueError`` unless ``workers`` is an int >= 1 and ``chunksize`` one or None.

    Parameters
    ----------
    workers : int
        Worker count to check: an int >= 1 (a ``bool`` is not an int here).
    chunksize : int or None
        Chunk size to check (items per chunk): an int >= 1, or ``None`` (automatic).

    Raises
    ------
    ValueError
        Naming the argument and its value, if either is not valid.
    """
    for name, value in (("workers", workers), ("chunksize", chunksize)):
        if value is None and name == "chunksize":
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an int >= 1, got {value!r}")


def check_resubmit(resubmit: int) -> None:
    """Raise ``ValueError`` unless ``resubmit`` (times a lost chunk is sent again) is an int >= 0.

    Parameters
    ----------
    resubmit : int
        Times a lost chunk is submitted again: an int >= 0 (a ``bool`` is not an int here).

    Raises
    ------
    ValueError
        Naming the value, if it is not valid.
    """
    if isinstance(resubmit, bool) or not isinstance(resubmit, int) or resubmit < 0:
        raise ValueError(f"resubmit must be an int >= 0, got {resubmit!r}")


CHUNKS_PER_WORKER = 4
"""Automatic chunk size with an executor: about this many chunks (tasks) per worker, so uneven
work still balances while a task per item would cost too much (e.g. a job per task on SLURM)."""

LOCAL_CHUNKS_PER_WORKER = 16
"""Automatic chunk size of a local process pool, whose tasks cost well under a millisecond:
finer chunks, so a few slow relaxations at the end of the list do not idle the other workers
(``benchmarks/RESULTS.md`` compares chunk sizes)."""


def auto_chunksize(n_items: int, workers: int, executor: Executor | None) -> int:
    """Chunk size (items per chunk) for ``n_items`` items over ``workers`` workers.

    Parameters
    ----------
    n_items : int
        Number of items to cut into chunks.
    workers : int
        Workers the stage asked for. With an executor, its own count is used if it tells and
        is larger (:func:`~assyst_nodes.runtime.futures_internals.executor_workers`), and at
        least 2.
    executor : concurrent.futures.Executor or None
        Where the chunks run; ``None``: in this process or a local process pool.

    Returns
    -------
    int
        ``ceil(n_items / (workers * per_worker))``, at least 1, where ``per_worker`` is
        :data:`CHUNKS_PER_WORKER` with an executor (its ``chunks_per_worker`` attribute if it
        has one), else :data:`LOCAL_CHUNKS_PER_WORKER`.
    """
    per_worker = LOCAL_CHUNKS_PER_WORKER
    if executor is not None:
        workers = max(workers, executor_workers(executor) or 0, 2)
        per_worker = int(getattr(executor, "chunks_per_worker", CHUNKS_PER_WORKER))
    return max(1, math.ceil(n_items / (workers * per_worker)))


def new_process_pool(workers: int) -> ProcessPoolExecutor:
    """A new local pool of ``workers`` processes, each limited to one BLAS/OpenMP thread.

    Workers with several threads each would oversubscribe the cores, so every worker runs
    :func:`single_threaded` first. Processes are forked while this process runs a single
    thread (fast: nothing is imported again); from a threaded process (e.g. a node of a running
    graph) they come from a fork server instead (``spawn`` where there is none), because
    forking a threaded process can deadlock; :func:`warm_workers` preloads that fork server.

    Parameters
    ----------
    workers : int
        Number of worker processes, >= 1.

    Returns
    -------
    concurrent.futures.ProcessPoolExecutor
        The pool; the caller shuts it down (e.g. by using it as a context manager).
    """
    return ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context(start_method()),
        initializer=single_threaded,
    )


class _SharedPools:
    """The pools kept by :func:`shared_workers` while it is open (process-wide, any thread)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.depth = 0
        self.pools: dict[int, ProcessPoolExecutor] = {}

    def get(self, workers: int) -> ProcessPoolExecutor | None:
        """The kept pool of ``workers`` processes (a new one if none or it broke); ``None``
        when no :func:`shared_workers` is open."""
        with self.lock:
            if self.depth == 0:
                return None
            pool = self.pools.get(workers)
            if pool is None or pool_broken(pool):
                if pool is not None:
                    pool.shutdown(wait=False, cancel_futures=True)
                pool = self.pools[workers] = new_process_pool(workers)
            return pool


_shared = _SharedPools()


_warm_lock = threading.Lock()
_warmed = False  # warm_workers started the fork server of this process


@contextlib.contextmanager
def shared_workers() -> Iterator[None]:
    """Keep local worker pools open across stages while this context is open.

    Without it each stage starts its own ``workers`` processes and stops them at its end, so a
    calculator that is slow to set up (a machine-learning potential: torch imported and the
    model loaded, seconds per process) is set up again in every stage. Inside it, every stage of
    this process that asks for ``n`` local workers (``workers=n`` or ``LocalProcesses(n)``)
    gets the same pool of ``n`` processes, whose calculators stay built between stages
    (:func:`~assyst_nodes.calculators.get_calculator` keeps them per process). Results do not
    change: chunks are the same and come back in order. A pool whose process died is replaced
    at the next stage. Re-entrant; the pools stop when the outermost context ends. The command
    line wraps every run in it::

        with shared_workers():
            out = pwf.run(assyst, ..., workers=2)

    Takes no arguments.

    Yields
    ------
    None
        Nothing: the pools are found by :func:`process_pool` while the context is open.
    """
    with _shared.lock:
        _shared.depth += 1
    try:
        yield
    finally:
        with _shared.lock:
            _shared.depth -= 1
            closing = list(_shared.pools.values()) if _shared.depth == 0 else []
            if _shared.depth == 0:
                _shared.pools.clear()
        for pool in closing:
            pool.shutdown(wait=True, cancel_futures=True)


@contextlib.contextmanager
def process_pool(workers: int, tasks: int | None = None) -> Iterator[ProcessPoolExecutor]:
    """A local pool of ``workers`` processes for one stage (a context manager).

    Parameters
    ----------
    workers : int
        Number of worker processes, >= 1.
    tasks : int or None, optional
        Number of tasks (chunks) the stage will submit: a new pool starts at most this many
        processes (at least 1), since more would idle. Ignored for the kept pool of
        :func:`shared_workers`. Default: ``None`` (``workers`` processes).

    Yields
    ------
    concurrent.futures.ProcessPoolExecutor
        The kept pool of ``workers`` processes while :func:`shared_workers` is open (left
        running at the end), else a new one (:func:`new_process_pool`) stopped when the
        context, i.e. the stage, ends.
    """
    pool = _shared.get(workers)
    if pool is not None:
        yield pool
        return
    with new_process_pool(workers if tasks is None else max(1, min(workers, tasks))) as pool:
        yield pool


STAGE_MODULES: tuple[str, ...] = (
    "assyst_nodes.stages.sample",
    "assyst_nodes.stages.relax",
    "assyst_nodes.stages.perturb",
    "assyst_nodes.stages.filter",
)
"""What the stages' chunks run (with ase, numpy, scipy, spglib and pyxtal under them)."""


def warm_workers(modules: Iterable[str] = ()) -> bool:
    """Start this process's fork server now, importing stage and calculator modules in it.

    The fork server imports ``__main__``, :data:`STAGE_MODULES` and ``modules`` in the
    background, while this process goes on. Worker processes that :func:`new_process_pool`
    later starts from the fork server (it does when this process runs several threads, e.g.
    inside a graph) are forked from it with those modules imported, instead of each importing
    them before its first chunk. Modules that cannot be imported are left out (the worker then
    reports the error when it builds the calculator). Results do not change, only when imports
    happen.

    Parameters
    ----------
    modules : iterable of str, optional
        Further modules to import, by dotted name, e.g. a calculator's
        :meth:`~assyst_nodes.calculators.CalculatorConfig.modules` (torch for a
        machine-learning potential, which takes seconds to import). Default: none.

    Returns
    -------
    bool
        ``True`` if it set the fork server's modules and made sure the server runs (one
        already running, e.g. started by other code, keeps its modules); ``False`` if it did
        nothing: where there is no fork server, or when it was called before in this process
        (a running fork server's modules cannot change).
    """
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return False
    from multiprocessing import forkserver

    global _warmed
    with _warm_lock:
        if _warmed:
            return False
        _warmed = True
    wanted = ["__main__", *STAGE_MODULES, *modules]
    multiprocessing.get_context("forkserver").set_forkserver_preload(
        list(dict.fromkeys(wanted))
    )
    forkserver.ensure_running()  # starts it with these modules unless it already runs
    return True


def start_method() -> str:
    """How :func:`process_pool` starts processes now: ``fork`` from a single-threaded
    process, else ``forkserver`` (or ``spawn`` where there is no fork server)."""
    methods = multiprocessing.get_all_start_methods()
    if threading.active_count() == 1 and "fork" in methods:
        return "fork"
    return "forkserver" if "forkserver" in methods else "spawn"


def check_importable(function: Callable[..., Any], fixed: tuple[Any, ...]) -> None:
    """``TypeError`` if ``function`` or ``fixed`` need something defined in a ``__main__``
    that has no file (a notebook cell, ``python -c``) while new processes would not be forked:
    such processes import what they run and cannot find it (they would die with only a
    ``BrokenProcessPool``). A script's ``__main__`` is fine: they import the script again."""
    main_file = getattr(sys.modules.get("__main__"), "__file__", None)
    if start_method() == "fork" or (main_file is not None and os.path.isfile(main_file)):
        return
    try:
        payload = pickle.dumps((function, fixed))
    except Exception as error:
        raise TypeError(f"cannot send the work to worker processes: {error}") from error
    if b"__main__" in payload:
        names = [
            f"{type(value).__name__}" for value in (function, *fixed)
            if getattr(type(value), "__module__", "") == "__main__"
        ] or ["an object"]
        raise TypeError(
            f"{', '.join(names)} is defined in __main__ (a notebook or -c), which worker "
            f"processes started by {start_method()} cannot import; define it in an importable "
            "module, or use workers=1"
        )


def single_threaded() -> None:
    """Limit this process's BLAS/OpenMP pools to one thread (a pool worker initializer).

    Sets ``OMP_NUM_THREADS``, ``OPENBLAS_NUM_THREADS`` and ``MKL_NUM_THREADS`` to ``1`` in
    the environment (for what starts later) and limits the thread pools already loaded, with
    threadpoolctl. Takes no arguments; returns ``None``.
    """
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[name] = "1"
    threadpool_limits(1)


def call_single_threaded(function: Callable[..., R], *args: Any) -> R:
    """``function(*args)`` with BLAS/OpenMP limited to one thread while it runs.

    Every chunk runs through this, wherever it runs: the stages work on 3x3 matrices and small
    cells, where BLAS threads only spin, and an executor's workers (e.g. executorlib's) would
    otherwise each start a thread per core (``docs/cluster.md`` shows what that costs). The
    previous thread limits are restored afterwards.

    Parameters
    ----------
    function : callable
        What to call.
    *args
        Its positional arguments.

    Returns
    -------
    object
        What ``function(*args)`` returned.
    """
    with threadpool_limits(1):
        return function(*args)


Lost = Callable[[Any, BaseException], Any]
"""Builds the result of one item of a chunk that never came back, from the item and the error
(e.g. a ``Drop`` with reason ``worker_lost``)."""
OnChunk = Callable[[Sequence[Any], list[Any]], None]
"""Called in the calling process as each chunk's results arrive: (the chunk's items, their
results), in completion order."""


def where() -> tuple[str, str | None]:
    """(host, SLURM job id or None) of this process: where a chunk ran.

    Takes no arguments.

    Returns
    -------
    tuple of (str, str or None)
        The host name and the ``SLURM_JOB_ID`` environment variable (``None`` outside a SLURM
        job).
    """
    return socket.gethostname(), os.environ.get("SLURM_JOB_ID")


def run_chunk(
    function: Callable[..., list[R]], *args: Any, attempt: int = 0
) -> tuple[list[R], tuple[str, str | None]]:
    """``function(*args)`` single-threaded, and where it ran: the task every fan-out submits.

    Parameters
    ----------
    function : callable
        The chunk's work; it returns a list (one result per item of the chunk).
    *args
        Its positional arguments (the fixed ones, then the chunk).
    attempt : int, default 0
        Counts resubmissions (keyword only; not passed on). It makes a resubmitted task differ
        from the lost one for executors that cache by arguments (executorlib's file-based
        executors would return the cached failure).

    Returns
    -------
    tuple of (list, tuple of (str, str or None))
        ``function(*args)`` run under :func:`call_single_threaded`, and :func:`where` it ran.
    """
    return call_single_threaded(function, *args), where()


class Execution:
    """Where a fan-out's chunks ran, for :attr:`assyst_nodes.reports.StageReport.execution`.

    Collects the executor's class, chunks, resubmissions, hosts and SLURM job ids, in the
    attributes ``executor`` (str), ``chunks`` and ``resubmitted`` (int), ``hosts`` and
    ``slurm_job_ids`` (sets of str); :meth:`record` gives them as a dict.

    Parameters
    ----------
    executor : concurrent.futures.Executor or None
        What runs the chunks; it names ``executor``: ``"in process"`` for ``None``,
        ``"local processes"`` for a ``ProcessPoolExecutor``, else the executor's class name.
    """

    def __init__(self, executor: Executor | None) -> None:
        if executor is None:
            self.executor = "in process"
        elif isinstance(executor, ProcessPoolExecutor):
            self.executor = "local processes"
        else:
            self.executor = type(executor).__name__
        self.chunks = 0
        self.resubmitted = 0
        self.hosts: set[str] = set()
        self.slurm_job_ids: set[str] = set()

    def ran(self, place: tuple[str, str | None]) -> None:
        """Count one chunk that ran at ``place``.

        Parameters
        ----------
        place : tuple of (str, str or None)
            (host, SLURM job id or None), as :func:`where` returns it.
        """
        host, job = place
        self.chunks += 1
        self.hosts.add(host)
        if job:
            self.slurm_job_ids.add(job)

    def record(self) -> dict[str, Any]:
        """What was collected, as a stage report's ``execution`` entry.

        Returns
        -------
        dict
            ``executor``, ``chunks``, ``resubmitted``, ``hosts`` (sorted) and, if any chunk
            ran in a SLURM job, ``slurm_job_ids`` (in numeric order).
        """
        out: dict[str, Any] = {
            "executor": self.executor,
            "chunks": self.chunks,
            "resubmitted": self.resubmitted,
            "hosts": sorted(self.hosts),
        }
        if self.slurm_job_ids:
            out["slurm_job_ids"] = sorted(self.slurm_job_ids, key=lambda j: (len(j), j))
        return out


def map_chunks(
    function: Callable[..., list[R]],
    fixed: tuple[Any, ...],
    items: Sequence[T],
    workers: int = 1,
    executor: Executor | None = None,
    chunksize: int | None = None,
    description: str = "",
    progress: bool | None = None,
    resubmit: int = 1,
    lost: Lost | None = None,
    on_chunk: OnChunk | None = None,
    execution: dict[str, Any] | None = None,
) -> list[R]:
    """``function(*fixed, chunk)`` for each chunk of ``items``; the concatenated results.

    The results come back in the order of ``items``, whatever ran them. A chunk sent to a pool
    or executor that fails there (its worker died, its scheduler job was cancelled or ran out
    of wall time) is submitted again, up to ``resubmit`` times; after that each of its items
    gets ``lost(item, error)`` (if ``lost`` is given; else the error is raised).

    Parameters
    ----------
    function : callable
        Called as ``function(*fixed, chunk)`` with a list of items; must return one result per
        item of its chunk and, for processes or remote executors, be importable and take
        picklable arguments.
    fixed : tuple
        The arguments before the chunk, the same for every chunk.
    items : sequence
        The items to cut into chunks.
    workers : int, default 1
        Local processes to run chunks in, an int >= 1; ``1`` (or a single chunk): this
        process. Ignored when ``executor`` is given (``executor`` wins over ``workers``), except
        for the automatic chunk size.
    executor : concurrent.futures.Executor or None, optional
        Where the chunks run. Default: ``None`` (this process or ``workers`` local processes,
        see :func:`process_pool`).
    chunksize : int or None, optional
        Items per chunk, an int >= 1. Default: ``None`` (:func:`auto_chunksize`).
    description : str, default ""
        Label of the progress bar.
    progress : bool or None, optional
        Show a bar over items; ``None`` (the default) decides from the environment (see
        :mod:`assyst_nodes.runtime.progress`).
    resubmit : int, default 1
        Times a failed chunk is submitted again, an int >= 0 (only chunks sent to a pool or
        executor; in this process an error is raised at once).
    lost : callable or None, optional
        ``lost(item, error)`` builds the result of each item of a chunk that failed
        ``resubmit + 1`` times (e.g. a ``Drop`` with reason ``worker_lost``). Default: ``None``
        (the error is raised, and the chunks still pending are cancelled).
    on_chunk : callable or None, optional
        Called in the calling process as ``on_chunk(chunk, results)`` as each chunk's results
        arrive (in completion order, not input order). Default: ``None``.
    execution : dict or None, optional
        Updated at the end with where the chunks ran (:meth:`Execution.record`). Default:
        ``None`` (not recorded).

    Returns
    -------
    list
        The results of all chunks, concatenated in the order of ``items``.

    Raises
    ------
    ValueError
        If ``workers``, ``chunksize`` or ``resubmit`` is not valid (:func:`check_workers`,
        :func:`check_resubmit`).
    TypeError
        If ``function`` and ``fixed`` must go to new (not forked) local processes but do not
        pickle, or need something defined in a ``__main__`` that has no file (a notebook cell,
        ``python -c``), which such processes cannot import (they would die with only a
        ``BrokenProcessPool``); define it in an importable module, or use ``workers=1``.
    """
    check_workers(workers, chunksize)
    check_resubmit(resubmit)
    if chunksize is None:
        chunksize = auto_chunksize(len(items), workers, executor)
    chunks = [list(items[i : i + chunksize]) for i in range(0, len(items), chunksize)]
    record = Execution(executor)
    handling = _Handling(resubmit, lost, on_chunk, record)
    with progress_bar(len(items), description, progress) as bar:
        if executor is None and (workers == 1 or len(chunks) <= 1):
            parts = []
            for chunk in chunks:
                part, place = run_chunk(function, *fixed, chunk)
                record.ran(place)
                parts.append(part)
                if on_chunk is not None:
                    on_chunk(chunk, part)
                bar.update(len(chunk))
        elif executor is not None:
            parts = _gather(executor, function, fixed, chunks, bar, handling)
        else:
            check_importable(function, fixed)
            with process_pool(workers, len(chunks)) as pool:
                record.executor = "local processes"
                parts = _gather(pool, function, fixed, chunks, bar, handling)
    if execution is not None:
        execution.update(record.record())
    return [result for part in parts for result in part]


@dataclass(frozen=True)
class _Handling:
    """What :func:`_gather` does with failed and finished chunks (see :func:`map_chunks`)."""

    resubmit: int
    lost: Lost | None
    on_chunk: OnChunk | None
    record: Execution


def _gather(
    executor: Executor,
    function: Callable[..., list[R]],
    fixed: tuple[Any, ...],
    chunks: list[list[T]],
    bar: Any,
    handling: _Handling,
) -> list[list[R]]:
    """Run every chunk on ``executor``: results in chunk order, failed chunks resubmitted, then
    given up item by item (see :func:`map_chunks`)."""
    resubmit, lost, on_chunk, record = (
        handling.resubmit, handling.lost, handling.on_chunk, handling.record
    )
    attempts = [0] * len(chunks)
    futures: dict[Future[Any], int] = {}

    def submit(i: int) -> None:
        try:
            task = executor.submit(run_chunk, function, *fixed, chunks[i], attempt=attempts[i])
            futures[task] = i
        except Exception as error:  # a broken pool refuses new work at once
            failed: Future[Any] = Future()
            failed.set_exception(error)
            futures[failed] = i

    for i in range(len(chunks)):
        submit(i)
    parts: list[list[R] | None] = [None] * len(chunks)
    while futures:
        done, _ = wait(list(futures), return_when=FIRST_COMPLETED)
        for future in done:
            i = futures.pop(future)
            try:
                part, place = future.result()
            except Exception as error:
                if attempts[i] < resubmit:
                    attempts[i] += 1
                    record.resubmitted += 1
                    submit(i)
                    continue
                if lost is None:
                    for other in futures:
                        other.cancel()
                    raise
                part = [lost(item, error) for item in chunks[i]]
            else:
                record.ran(place)
            parts[i] = part
            if on_chunk is not None:
                on_chunk(chunks[i], part)
            bar.update(len(chunks[i]))
    return [part for part in parts if part is not None]


def in_order(
    executor: Executor,
    function: Callable[..., list[R]],
    fixed: tuple[Any, ...],
    chunks: Sequence[Sequence[T]],
    depth: int,
    resubmit: int = 1,
    lost: Lost | None = None,
    execution: Execution | None = None,
) -> Iterator[list[R]]:
    """``function(*fixed, chunk)`` of each chunk, yielded in order, with at most ``depth``
    chunks submitted and not yet finished at any time.

    A new chunk is submitted whenever one finishes, so a slow chunk at the head delays the
    order of what is yielded, never the workers; a consumer that stops early (e.g. at a cap)
    leaves at most ``depth`` chunks behind. Closing the generator cancels those not started.

    Parameters
    ----------
    executor : concurrent.futures.Executor
        Where the chunks run.
    function : callable
        Called as ``function(*fixed, chunk)``; returns one result per item of its chunk (see
        :func:`map_chunks` for what it must be).
    fixed : tuple
        The arguments before the chunk, the same for every chunk.
    chunks : sequence of sequences
        The chunks of items, in order; read lazily, as submission slots free up.
    depth : int
        Most chunks submitted and not yet finished at any time.
    resubmit : int, default 1
        Times a chunk that fails on the executor is submitted again before it is given up as
        in :func:`map_chunks`.
    lost : callable or None, optional
        ``lost(item, error)`` builds the result of each item of a chunk given up. Default:
        ``None`` (the error is raised).
    execution : Execution or None, optional
        Records where the chunks ran (and resubmissions). Default: ``None`` (a new
        :class:`Execution`, not returned).

    Yields
    ------
    list
        Each chunk's results (one per item), in the order of ``chunks``.
    """
    record = execution if execution is not None else Execution(executor)
    pending: deque[list[Any]] = deque()  # [future, chunk, attempts], submitted, in order
    upcoming = iter(chunks)

    def submit(chunk: Sequence[T], attempt: int = 0) -> Future[Any]:
        try:
            return executor.submit(run_chunk, function, *fixed, chunk, attempt=attempt)
        except Exception as error:  # a broken pool refuses new work at once
            failed: Future[Any] = Future()
            failed.set_exception(error)
            return failed

    try:
        while True:
            unfinished = [entry[0] for entry in pending if not entry[0].done()]
            for chunk in itertools.islice(upcoming, max(0, depth - len(unfinished))):
                future = submit(chunk)
                pending.append([future, chunk, 0])
                unfinished.append(future)
            if not pending:
                return
            head = pending[0]
            if not head[0].done():
                wait(unfinished, return_when=FIRST_COMPLETED)
                continue
            try:
                part, place = head[0].result()
            except Exception as error:
                if head[2] < resubmit:
                    head[2] += 1
                    record.resubmitted += 1
                    head[0] = submit(head[1], head[2])
                    continue
                if lost is None:
                    raise
                part = [lost(item, error) for item in head[1]]
            else:
                record.ran(place)
            pending.popleft()
            yield part
    finally:
        for entry in pending:
            entry[0].cancel()
