"""``assyst_nodes.runtime.deadline``'s own child processes against a pebble pool doing the same job.

    python benchmarks/deadline_pebble.py [--calls 300] [--json OUT]

Needs ``pebble`` (``pip install pebble``, or the ``benchmark`` extra); it is not a dependency of
the package. Outside the main thread (and with ``mode="process"``) :class:`TimeLimit` runs each
call in a reusable child process (``deadline._Child``). This script swaps that class for
:class:`PebbleChild`, a ``pebble.ProcessPool`` of one process with a per-task timeout (the same
``seconds`` + grace), everything else of the module unchanged, and measures both on this
machine in the same run:

* the first call (starting the child) and the median of ``--calls`` calls of a function that
  does nothing (the per-call overhead);
* a Python-level hang (``time.sleep(3600)``, limit 0.2 s): seconds until the exception, and
  whether the next call reuses the same process;
* a call stuck in compiled code that never returns to the interpreter, twice: LAPACK
  (``numpy.linalg.eigvals`` of a 2200 x 2200 matrix, one BLAS thread, ~8 s on 2 cores) and
  ``time.sleep`` with ``SIGALRM`` and ``SIGTERM`` blocked (as ``tests/test_faults.py`` does),
  limit 0.5 s: seconds until the exception;
* a call made inside a worker of a ``multiprocessing.Pool`` (daemonic: multiprocessing refuses
  it children) and inside a forked ``ProcessPoolExecutor`` worker (not daemonic since Python
  3.9) of a process whose fork server runs (as after
  :func:`assyst_nodes.runtime.fanout.warm_workers`), and whether that worker exits when the executor
  shuts down (needs ``psutil``);
* the parent killed (``SIGKILL``) while its child hangs: is the child gone 3 s later;
* threads the parent runs per child.

Prints a Markdown table (and writes every number to ``--json``).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import multiprocessing.forkserver
import os
import pickle
import signal
import statistics
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from typing import Any, TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from assyst_nodes.runtime import deadline
from assyst_nodes.runtime.deadline import (
    GRACE_SECONDS,
    TimeLimit,
    TimeLimitExceeded,
    WorkerDied,
    _call_with_alarm,
    _dumps,
)

try:
    import pebble
except ImportError:  # pragma: no cover - depends on the environment
    pebble = None

R = TypeVar("R")

# ----------------------------------------------------------------------------------------------
# the pebble replacement of deadline._Child


def _pebble_init() -> None:
    """Initializer of the pebble child process: one BLAS thread, as deadline's child."""
    from assyst_nodes.runtime.fanout import single_threaded

    single_threaded()


def _pebble_run(payload: bytes) -> tuple[str, Any]:
    """Run a pickled ``(seconds, function, args)`` under the alarm in the child's main thread."""
    try:
        seconds, function, args = pickle.loads(payload)
    except Exception as error:
        return "unloadable", f"{type(error).__name__}: {error}"
    try:
        return "ok", _call_with_alarm(seconds, function, args)
    except BaseException as error:
        return "raised", error


class PebbleChild:
    """``deadline._Child`` on a ``pebble.ProcessPool`` of one process, started by a fork server
    (forking a threaded process is unsafe, and pebble's pool itself runs three threads)."""

    method = "forkserver"

    def __init__(self) -> None:
        self.pool = pebble.ProcessPool(
            1, initializer=_pebble_init, context=multiprocessing.get_context(self.method)
        )
        self.dead = False

    def alive(self) -> bool:
        return not self.dead

    def call(self, seconds: float | None, function: Callable[..., R], args: tuple[Any, ...]) -> R:
        try:
            payload = _dumps((seconds, function, args))
        except Exception as error:
            raise TypeError(f"needs picklable work ({type(error).__name__}: {error})") from error
        wait = None if seconds is None else seconds + GRACE_SECONDS + 0.1 * seconds
        try:
            kind, value = self.pool.schedule(_pebble_run, (payload,), timeout=wait).result()
        except FutureTimeout:
            raise TimeLimitExceeded(seconds or 0.0, "its process was killed") from None
        except pebble.ProcessExpired as error:
            raise WorkerDied(f"the process died (exit code {error.exitcode})") from None
        except BaseException:
            self.kill()
            raise
        if kind == "unloadable":
            raise TypeError(f"could not load the work in the child ({value})")
        if kind == "raised":
            raise value
        return value

    def kill(self) -> None:
        self.dead = True
        self.pool.stop()
        self.pool.join()


class PebbleSpawnChild(PebbleChild):
    """:class:`PebbleChild` whose process is a fresh interpreter (``spawn``), as deadline's."""

    method = "spawn"


ORIGINAL = deadline._Child
IMPLEMENTATIONS: dict[str, Any] = {
    "deadline.py": ORIGINAL,
    "pebble (forkserver)": PebbleChild,
    "pebble (spawn)": PebbleSpawnChild,
}


def use(name: str) -> None:
    """Make ``TimeLimit`` start children of implementation ``name``; drop idle ones."""
    deadline._stop_idle()
    deadline._Child = IMPLEMENTATIONS[name]


# ----------------------------------------------------------------------------------------------
# the work


def nothing() -> int:
    return os.getpid()


def hang_in_python() -> None:
    time.sleep(3600)


def hang_in_lapack() -> None:
    """One LAPACK call of several seconds: no Python bytecode runs until it returns."""
    import numpy as np

    np.linalg.eigvals(np.random.default_rng(0).random((2200, 2200)))


def hang_with_signals_blocked() -> None:
    """Stands in for compiled code that never returns: no Python signal handler can run."""
    signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGALRM, signal.SIGTERM])
    time.sleep(3600)


def timed_failure(limit: TimeLimit, function: Callable[[], Any]) -> float:
    """Seconds until ``limit(function)`` raises ``TimeLimitExceeded``."""
    start = time.perf_counter()
    try:
        limit(function)
    except TimeLimitExceeded:
        return time.perf_counter() - start
    raise AssertionError(f"{function.__name__} was not stopped")


def in_pool_worker(name: str) -> str:
    """A limited call (child process mode) made inside a ProcessPoolExecutor worker."""
    use(name)
    try:
        with TimeLimit(10.0, mode="process") as limit:
            return f"works (pid {limit(nothing)})"
    except BaseException as error:
        while error.__cause__ is not None:  # pebble wraps the reason in BrokenProcessPool
            error = error.__cause__
        return f"fails: {type(error).__name__}: {error}"


def worker_exits(pool: ProcessPoolExecutor) -> bool:
    """Shut ``pool`` down (its worker keeps an idle child); did the worker exit within 10 s?
    (multiprocessing joins a process's non-daemonic children before it exits.)"""
    import psutil

    workers = [psutil.Process(pid) for pid in pool._processes]  # type: ignore[union-attr]
    pool.shutdown(wait=False)
    _, alive = psutil.wait_procs(workers, timeout=10)
    for worker in alive:  # stuck: kill it and what it started
        for process in [*worker.children(recursive=True), worker]:
            process.kill()
    return not alive


ORPHAN = textwrap.dedent(
    """
    import os, sys, time
    sys.path[:0] = [{root!r}, {here!r}]
    import deadline_pebble as bench
    from assyst_nodes.runtime.deadline import TimeLimit

    def hang_and_tell():
        print(os.getpid(), flush=True)
        time.sleep(3600)

    if __name__ == "__main__":
        bench.use({name!r})
        TimeLimit(3600.0, mode="process")(hang_and_tell)
    """
)


def child_outlives_parent(name: str) -> bool:
    """Kill (SIGKILL) a process whose limited call hangs; is its child alive 3 s later?"""
    script = Path(f"/tmp/deadline_pebble_orphan_{os.getpid()}.py")
    here = str(Path(__file__).resolve().parent)
    script.write_text(ORPHAN.format(root=str(Path(here).parent), here=here, name=name))
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        parent.kill()
        parent.wait()
        time.sleep(3.0)
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            return False
        os.kill(child, signal.SIGKILL)
        return True
    finally:
        script.unlink(missing_ok=True)


def measure(name: str, calls: int) -> dict[str, Any]:
    use(name)
    out: dict[str, Any] = {}
    threads = threading.active_count()
    with TimeLimit(30.0, mode="process") as limit:
        start = time.perf_counter()
        first = limit(nothing)
        out["first_call_s"] = time.perf_counter() - start
        out["threads_per_child"] = threading.active_count() - threads
        times = []
        for _ in range(calls):
            start = time.perf_counter()
            limit(nothing)
            times.append(time.perf_counter() - start)
        out["call_median_ms"] = 1e3 * statistics.median(times)
        out["call_p90_ms"] = 1e3 * statistics.quantiles(times, n=10)[-1]
        assert limit(nothing) == first
    with TimeLimit(0.2, mode="process") as limit:
        first = limit(nothing)
        out["python_hang_s"] = timed_failure(limit, hang_in_python)
        out["python_hang_same_process_after"] = limit(nothing) == first
    with TimeLimit(0.5, mode="process") as limit:
        limit(nothing)
        out["lapack_hang_s"] = timed_failure(limit, hang_in_lapack)
        start = time.perf_counter()
        limit(nothing)
        out["next_call_after_kill_s"] = time.perf_counter() - start
        out["blocked_signals_hang_s"] = timed_failure(limit, hang_with_signals_blocked)
    deadline._stop_idle()
    fork = multiprocessing.get_context("fork")
    with fork.Pool(1) as daemonic:
        try:
            out["in_multiprocessing_pool_worker"] = daemonic.apply_async(
                in_pool_worker, (name,)
            ).get(timeout=60)
        except multiprocessing.TimeoutError:
            out["in_multiprocessing_pool_worker"] = "hangs (no answer in 60 s)"
    pool = ProcessPoolExecutor(1, mp_context=fork)
    out["in_forked_executor_worker"] = pool.submit(in_pool_worker, name).result(timeout=60)
    out["executor_worker_exits_after_it"] = worker_exits(pool)
    out["child_alive_3s_after_parent_killed"] = child_outlives_parent(name)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--json", type=Path)
    options = parser.parse_args()
    if pebble is None:
        sys.exit(
            "benchmarks/deadline_pebble.py needs pebble: pip install pebble "
            "(or pip install -e '.[benchmark]')"
        )
    results: dict[str, Any] = {}
    multiprocessing.forkserver.ensure_running()  # as the CLI does (warm_workers)
    with TimeLimit(5.0) as limit:  # main thread: the alarm, the same code in both
        start = time.perf_counter()
        for _ in range(options.calls):
            limit(nothing)
        results["signal_mode_call_us"] = 1e6 * (time.perf_counter() - start) / options.calls
        results["signal_mode_lapack_hang_s"] = timed_failure(TimeLimit(0.5), hang_in_lapack)
    for name in IMPLEMENTATIONS:
        print(f"measuring {name} ...", file=sys.stderr, flush=True)
        results[name] = measure(name, options.calls)
    use("deadline.py")
    rows = list(results["deadline.py"])
    print(f"| measurement (pebble {pebble.__version__}) | {' | '.join(IMPLEMENTATIONS)} |")
    print("|---|" + "---|" * len(IMPLEMENTATIONS))
    for key in rows:
        cells = []
        for name in IMPLEMENTATIONS:
            value = results[name][key]
            text = f"{value:.3g}" if isinstance(value, float) else str(value)
            cells.append(text.splitlines()[0][:90] if text else text)
        print(f"| {key} | {' | '.join(cells)} |")
    print(f"\nsignal mode (main thread, both): {results['signal_mode_call_us']:.1f} µs per call; "
          f"LAPACK hang with a 0.5 s limit ends after {results['signal_mode_lapack_hang_s']:.2f} s")
    if options.json:
        options.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
