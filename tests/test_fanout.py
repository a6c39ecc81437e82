"""Fan-out over local processes: start methods and work that worker processes cannot import."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

SCRIPT = textwrap.dedent(
    """
    import threading
    from ase.build import bulk
    from assyst_nodes.relaxations import VolumeRelax, relax

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
    from assyst_nodes.relaxations import VolumeRelax, relax

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

    from assyst_nodes.fanout import in_order

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
