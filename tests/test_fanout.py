"""Fan-out over local processes (start methods, work that worker processes cannot import) and
any executor (lost chunks resubmitted, then reported item by item; where chunks ran)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from assyst_nodes.runtime.fanout import Execution, in_order, map_chunks

SCRIPT = textwrap.dedent(
    """
    import threading
    from ase.build import bulk
    from assyst_nodes.stages.relax import VolumeRelax, relax

    class MyRelax(VolumeRelax):  # defined in __main__, as in a notebook cell
        pass

    outcome = {}

    def run():
        try:
            relax([bulk("Cu", cubic=True)] * 4, MyRelax(max_steps=2), workers=2)
            outcome["error"] = None
        except TypeError as error:
            outcome["error"] = str(error)

    thread = threading.Thread(target=run)  # a threaded process starts no forked workers
    thread.start()
    thread.join()
    print("ERROR:", outcome["error"])
    relax([bulk("Cu", cubic=True)] * 4, MyRelax(max_steps=2), workers=2)  # forked: fine
    print("FORKED: ok")
    """
)


def test_work_defined_in_main_gets_a_clear_error_instead_of_a_broken_pool(tmp_path: Path) -> None:
    done = subprocess.run(  # with -c, __main__ has no file to import again (as in Jupyter)
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr[-2000:]
    error = next(line for line in done.stdout.splitlines() if line.startswith("ERROR:"))
    assert "MyRelax is defined in __main__" in error and "workers=1" in error
    assert "FORKED: ok" in done.stdout


GUARDED = textwrap.dedent(
    """
    import threading
    from ase.build import bulk
    from assyst_nodes.stages.relax import VolumeRelax, relax

    class MyRelax(VolumeRelax):  # a script's class: workers import the script again
        pass

    if __name__ == "__main__":
        out = []
        thread = threading.Thread(
            target=lambda: out.extend(
                relax([bulk("Cu", cubic=True)] * 4, MyRelax(max_steps=2), workers=2)
            )
        )
        thread.start()
        thread.join()
        print("RELAXED:", len(out))
    """
)


def test_a_scripts_own_classes_still_fan_out_from_a_thread(tmp_path: Path) -> None:
    script = tmp_path / "engine.py"
    script.write_text(GUARDED)
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=300, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "RELAXED: 4" in done.stdout


def _sleepy_identity(chunk: list[float]) -> list[float]:
    import time

    for seconds in chunk:
        time.sleep(seconds)
    return chunk


def test_in_order_yields_in_order_keeps_workers_busy_behind_a_slow_head_and_cancels() -> None:
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from assyst_nodes.runtime.fanout import in_order

    submitted: list[Any] = []
    unfinished_at_submit: list[int] = []
    lock = threading.Lock()

    class CountingPool(ThreadPoolExecutor):
        def submit(self, fn, /, *args, **kwargs):  # type: ignore[no-untyped-def, override]
            with lock:
                unfinished_at_submit.append(sum(not f.done() for f in submitted))
            future = super().submit(fn, *args, **kwargs)
            with lock:
                submitted.append(future)
            return future

    chunks = [[0.3], *([[0.01]] * 12)]  # a slow head, then quick chunks
    with CountingPool(2) as pool:
        stream = in_order(pool, _sleepy_identity, (), chunks, depth=3)
        assert next(stream) == [0.3]
        assert len(submitted) > 3  # the quick ones went on while the head ran
        assert list(stream) == chunks[1:]
    assert len(submitted) == len(chunks) and max(unfinished_at_submit) < 3
    submitted.clear()
    with CountingPool(1) as pool:
        stream = in_order(pool, _sleepy_identity, (), [[0.05]] * 10, depth=4)
        next(stream)
        stream.close()  # what has not started is cancelled, not run
    assert len(submitted) <= 5
    assert sum(future.cancelled() for future in submitted) >= 2  # one may have started


# ----------------------------------------------------------------------------------------------
# chunks lost on their executor: resubmitted, then reported item by item


class FlakyExecutor(ThreadPoolExecutor):
    """Runs tasks in threads, but the first ``failures[i]`` submissions of chunk i fail as a
    cancelled scheduler job would (the chunk is recognised by its first item)."""

    def __init__(self, failures: dict[int, int]) -> None:
        super().__init__(max_workers=2)
        self.failures = dict(failures)
        self.submitted: list[int] = []

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Future[Any]:
        first = args[-1][0]
        self.submitted.append(first)
        if self.failures.get(first, 0) > 0:
            self.failures[first] -= 1
            future: Future[Any] = Future()
            future.set_exception(RuntimeError(f"SLURM job of chunk {first} was cancelled"))
            return future
        return super().submit(fn, *args, **kwargs)


def squares(items: list[int]) -> list[int]:
    return [i * i for i in items]


def test_a_lost_chunk_is_resubmitted_and_the_result_is_the_same() -> None:
    execution: dict[str, Any] = {}
    with FlakyExecutor({2: 1}) as pool:
        out = map_chunks(squares, (), list(range(6)), executor=pool, chunksize=2,
                         resubmit=1, execution=execution)
    assert out == [i * i for i in range(6)]
    assert pool.submitted.count(2) == 2
    assert execution["resubmitted"] == 1 and execution["chunks"] == 3
    assert execution["executor"] == "FlakyExecutor" and execution["hosts"]


def test_a_chunk_lost_more_often_than_resubmit_allows_is_reported_item_by_item() -> None:
    seen: list[tuple[list[int], list[Any]]] = []
    with FlakyExecutor({2: 5}) as pool:
        out = map_chunks(
            squares, (), list(range(6)), executor=pool, chunksize=2, resubmit=2,
            lost=lambda item, error: ("lost", item, str(error)),
            on_chunk=lambda items, results: seen.append((list(items), results)),
        )
    assert out[:2] == [0, 1] and out[4:] == [16, 25]
    assert out[2:4] == [("lost", 2, "SLURM job of chunk 2 was cancelled"),
                        ("lost", 3, "SLURM job of chunk 2 was cancelled")]
    assert pool.submitted.count(2) == 3  # first try and two resubmissions
    assert sorted(items for items, _ in seen) == [[0, 1], [2, 3], [4, 5]]
    with FlakyExecutor({0: 1}) as pool, pytest.raises(RuntimeError, match="cancelled"):
        map_chunks(squares, (), list(range(4)), executor=pool, chunksize=2, resubmit=0)
    with pytest.raises(ValueError, match="resubmit must be an int >= 0, got -1"):
        map_chunks(squares, (), [1], resubmit=-1)


def test_in_order_resubmits_and_reports_lost_chunks_in_order() -> None:
    record = Execution(None)
    with FlakyExecutor({2: 1, 4: 3}) as pool:
        parts = list(
            in_order(pool, squares, (), [[0, 1], [2, 3], [4, 5]], depth=2, resubmit=1,
                     lost=lambda item, error: None, execution=record)
        )
    assert parts == [[0, 1], [4, 9], [None, None]]
    assert record.resubmitted == 2 and record.chunks == 2


def test_where_a_chunk_ran_names_the_slurm_job(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLURM_JOB_ID", "4242")
    execution: dict[str, Any] = {}
    map_chunks(squares, (), [1, 2, 3], execution=execution)
    assert execution["slurm_job_ids"] == ["4242"] and execution["executor"] == "in process"


def blas_threads(items: list[int]) -> list[int]:
    """The largest thread count of any BLAS/OpenMP pool loaded here (numpy's OpenBLAS at least),
    once per item."""
    import numpy as np
    from threadpoolctl import threadpool_info

    np.ones((2, 2)) @ np.ones((2, 2))  # BLAS is loaded and used
    pools = threadpool_info()
    assert pools, "no BLAS/OpenMP pool found"
    return [max(pool["num_threads"] for pool in pools)] * len(items)


def two_blas_threads() -> None:
    """Pool initializer: allow two BLAS/OpenMP threads in this worker, whatever it inherited."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(2)


def test_each_chunk_runs_with_one_blas_thread_in_process_and_in_a_worker(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``call_single_threaded`` around every chunk: two BLAS threads outside a chunk, one inside,
    in this process and in a worker of any executor (a plain process pool here, whose workers
    allow two threads)."""
    from concurrent.futures import ProcessPoolExecutor

    from threadpoolctl import threadpool_limits

    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.setenv(name, "2")
    with threadpool_limits(2):
        assert blas_threads([0]) == [2]  # what a chunk would see without the limit
        assert map_chunks(blas_threads, (), [1, 2], workers=1) == [1, 1]  # in this process
        assert blas_threads([0]) == [2]  # lifted again afterwards
    with ProcessPoolExecutor(2, initializer=two_blas_threads) as pool:
        assert pool.submit(blas_threads, [0]).result() == [2]  # a worker outside a chunk
        chunks = map_chunks(blas_threads, (), list(range(4)), executor=pool, chunksize=1)
        assert chunks == [1, 1, 1, 1]
        assert pool.submit(blas_threads, [0]).result() == [2]
    # the package's own worker processes
    assert map_chunks(blas_threads, (), list(range(4)), workers=2, chunksize=1) == [1] * 4
