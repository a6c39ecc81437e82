"""Fan a stage's work out in chunks: in this process, over local processes, or any Executor.

Results come back in input order whatever ran them, so a stage's output does not depend on the
number of workers. Local pools fork a single-threaded process and otherwise use a fork server
(see :func:`process_pool`); scripts that use ``workers > 1`` inside a graph therefore need the
usual ``if __name__ == "__main__":`` guard.
"""

from __future__ import annotations

import itertools
import math
import multiprocessing
import os
import pickle
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import (
    FIRST_COMPLETED,
    Executor,
    Future,
    ProcessPoolExecutor,
    as_completed,
    wait,
)
from typing import Any, TypeVar

from threadpoolctl import threadpool_limits

from .progress import progress_bar

__all__ = [
    "auto_chunksize",
    "call_single_threaded",
    "check_workers",
    "in_order",
    "map_chunks",
    "process_pool",
    "single_threaded",
]

T = TypeVar("T")
R = TypeVar("R")


def check_workers(workers: int, chunksize: int | None) -> None:
    """Raise ``ValueError`` unless ``workers`` is an int >= 1 and ``chunksize`` one or None."""
    for name, value in (("workers", workers), ("chunksize", chunksize)):
        if value is None and name == "chunksize":
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an int >= 1, got {value!r}")


CHUNKS_PER_WORKER = 4
"""Automatic chunk size with an executor: about this many chunks (tasks) per worker, so uneven
work still balances while a task per item would cost too much (e.g. a job per task on SLURM)."""

LOCAL_CHUNKS_PER_WORKER = 16
"""Automatic chunk size of a local process pool, whose tasks cost well under a millisecond:
finer chunks, so a few slow relaxations at the end of the list do not idle the other workers
(measured, 24 Cu-Ag FullRelax with EMT on 2 workers: 4 chunks per worker gave 1.47x the speed
of one worker, one structure per chunk 1.9x)."""


def auto_chunksize(n_items: int, workers: int, executor: Executor | None) -> int:
    """Chunk size for ``n_items`` over ``workers`` (an executor's ``_max_workers`` if known):
    :data:`CHUNKS_PER_WORKER` chunks per worker with an executor, else
    :data:`LOCAL_CHUNKS_PER_WORKER`."""
    per_worker = LOCAL_CHUNKS_PER_WORKER
    if executor is not None:
        workers = max(workers, int(getattr(executor, "_max_workers", 0) or 0), 2)
        per_worker = CHUNKS_PER_WORKER
    return max(1, math.ceil(n_items / (workers * per_worker)))


def process_pool(workers: int) -> ProcessPoolExecutor:
    """A local pool of ``workers`` processes, each limited to one BLAS/OpenMP thread (two
    workers with two threads each oversubscribed two cores: measured 2.8x slower).

    Processes are forked while this process runs a single thread (fast: nothing is imported
    again); from a threaded process (e.g. a node of a running graph) they come from a fork
    server instead, because forking a threaded process can deadlock.
    """
    return ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context(start_method()),
        initializer=single_threaded,
    )


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
    """Limit this process's BLAS/OpenMP pools to one thread (a pool worker initializer)."""
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[name] = "1"
    threadpool_limits(1)


def call_single_threaded(function: Callable[..., R], *args: Any) -> R:
    """``function(*args)`` with BLAS/OpenMP limited to one thread while it runs.

    Every chunk runs through this, wherever it runs: the stages work on 3x3 matrices and small
    cells, where BLAS threads only spin, and an executor's workers (e.g. executorlib's) would
    otherwise each start a thread per core (measured: 2 executorlib workers on 2 cores took
    70 s instead of 6 s).
    """
    with threadpool_limits(1):
        return function(*args)


def map_chunks(
    function: Callable[..., list[R]],
    fixed: tuple[Any, ...],
    items: Sequence[T],
    workers: int = 1,
    executor: Executor | None = None,
    chunksize: int | None = None,
    description: str = "",
    progress: bool | None = None,
) -> list[R]:
    """``function(*fixed, chunk)`` for each chunk of ``items``; the concatenated results.

    ``function`` must return one result per item of its chunk and, for processes or remote
    executors, be importable and take picklable arguments. ``executor`` wins over
    ``workers``; ``chunksize=None`` picks :func:`auto_chunksize`; ``progress`` shows a bar
    over items (see :mod:`assyst_nodes.progress`).
    """
    check_workers(workers, chunksize)
    if chunksize is None:
        chunksize = auto_chunksize(len(items), workers, executor)
    chunks = [list(items[i : i + chunksize]) for i in range(0, len(items), chunksize)]
    with progress_bar(len(items), description, progress) as bar:
        if executor is None and (workers == 1 or len(chunks) <= 1):
            parts = []
            for chunk in chunks:
                parts.append(call_single_threaded(function, *fixed, chunk))
                bar.update(len(chunk))
        elif executor is not None:
            parts = _gather(executor, function, fixed, chunks, bar)
        else:
            check_importable(function, fixed)
            with process_pool(min(workers, len(chunks))) as pool:
                parts = _gather(pool, function, fixed, chunks, bar)
    return [result for part in parts for result in part]


def _gather(
    executor: Executor,
    function: Callable[..., list[R]],
    fixed: tuple[Any, ...],
    chunks: list[list[T]],
    bar: Any,
) -> list[list[R]]:
    futures: dict[Future[list[R]], int] = {
        executor.submit(call_single_threaded, function, *fixed, chunk): i
        for i, chunk in enumerate(chunks)
    }
    parts: list[list[R] | None] = [None] * len(chunks)
    for future in as_completed(futures):
        i = futures[future]
        parts[i] = future.result()
        bar.update(len(chunks[i]))
    return [part for part in parts if part is not None]


def in_order(
    executor: Executor,
    function: Callable[..., list[R]],
    fixed: tuple[Any, ...],
    chunks: Sequence[Sequence[T]],
    depth: int,
) -> Iterator[list[R]]:
    """``function(*fixed, chunk)`` of each chunk, yielded in order, with at most ``depth``
    chunks submitted and not yet finished at any time.

    A new chunk is submitted whenever one finishes, so a slow chunk at the head delays the
    order of what is yielded, never the workers; a consumer that stops early (e.g. at a cap)
    leaves at most ``depth`` chunks behind. Closing the generator cancels those not started."""
    pending: deque[Future[list[R]]] = deque()  # submitted, not yet yielded, in order
    upcoming = iter(chunks)
    try:
        while True:
            unfinished = [future for future in pending if not future.done()]
            for chunk in itertools.islice(upcoming, max(0, depth - len(unfinished))):
                future = executor.submit(call_single_threaded, function, *fixed, chunk)
                pending.append(future)
                unfinished.append(future)
            if not pending:
                return
            if pending[0].done():
                yield pending.popleft().result()
            else:
                wait(unfinished, return_when=FIRST_COMPLETED)
    finally:
        for future in pending:
            future.cancel()
