"""The one place that reads internals of the standard library's ``concurrent.futures``.

Two facts have no public accessor: how many workers a pool has (``_max_workers``; it decides
only how finely a stage cuts its work into chunks, never its result), and whether a process
pool broke because a worker died (``_broken``; a broken pool kept across stages is replaced,
and a probe task instead would change which worker processes start). At import this module
checks that this Python's pools still set both attributes, and refuses otherwise with an
error naming the supported Python versions.
"""

from __future__ import annotations

import sys
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from typing import Final

__all__ = ["SUPPORTED_PYTHON", "executor_workers", "pool_broken"]

SUPPORTED_PYTHON: Final = ((3, 11), (3, 12), (3, 13))
"""Python versions whose pools this module was checked against."""

_POOLS: Final = (ProcessPoolExecutor, ThreadPoolExecutor)


_RELIED_ON: Final = (
    (ProcessPoolExecutor, "_max_workers"),
    (ThreadPoolExecutor, "_max_workers"),
    (ProcessPoolExecutor, "_broken"),
)
"""(pool class, attribute its constructor sets) this module reads."""


def _check(relied_on: tuple[tuple[type, str], ...] = _RELIED_ON) -> None:
    """``ImportError`` naming the supported Python versions if a standard pool's constructor
    no longer sets an attribute this module reads."""
    lacking = [
        f"{pool.__name__}.{name}"
        for pool, name in relied_on
        if name not in pool.__init__.__code__.co_names
    ]
    if lacking:
        supported = ", ".join(f"{major}.{minor}" for major, minor in SUPPORTED_PYTHON)
        raise ImportError(
            f"assyst_nodes reads {', '.join(lacking)}, which this Python "
            f"({sys.version.split()[0]}) no longer sets; supported: Python {supported}; "
            "update assyst_nodes/runtime/futures_internals.py for it"
        )


_check()


def executor_workers(executor: Executor | None) -> int | None:
    """How many tasks ``executor`` runs at once, if it tells.

    Parameters
    ----------
    executor : concurrent.futures.Executor or None
        Any executor; ``None`` (work in this process) tells nothing.

    Returns
    -------
    int or None
        Its public integer ``workers`` attribute if it has one (this package's executors say
        it), else a standard ``ProcessPoolExecutor``'s or ``ThreadPoolExecutor``'s worker count
        (the private ``_max_workers``), else ``None`` (it does not tell, or ``executor`` is
        ``None``).
    """
    if executor is None:
        return None
    workers = getattr(executor, "workers", None)
    if isinstance(workers, int) and not isinstance(workers, bool):
        return workers
    if isinstance(executor, _POOLS):
        return int(executor._max_workers)
    return None


def pool_broken(pool: ProcessPoolExecutor) -> bool:
    """Whether ``pool`` broke (one of its workers died): it runs no more tasks.

    Parameters
    ----------
    pool : concurrent.futures.ProcessPoolExecutor
        A standard process pool (its private ``_broken`` attribute is read).

    Returns
    -------
    bool
        ``True`` if the pool is broken and must be replaced, ``False`` if it still takes tasks.
    """
    return bool(pool._broken)
