"""One pool of local workers for all stages of a run
(:func:`assyst_nodes.runtime.fanout.shared_workers`): calculators are built once per worker process
per run, not once per stage, and a pool whose
process died is replaced at the next stage."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import psutil
from ase.build import bulk

from assyst_nodes.calculators import EMT, get_calculator
from assyst_nodes.reports import Drop
from assyst_nodes.runtime.fanout import map_chunks, shared_workers
from assyst_nodes.stages.relax import FullRelax, VolumeRelax, relax


@dataclass(frozen=True)
class CountedEMT(EMT):
    """EMT that appends ``<pid>`` to the file ``builds`` each time it is built."""

    builds: str = ""

    def build(self):  # type: ignore[no-untyped-def]
        with open(self.builds, "a") as log:
            log.write(f"{os.getpid()}\n")
        return super().build()


def where_built(config: CountedEMT, chunk: list[int]) -> list[int]:
    """The pid of the worker for each item, after building the calculator there."""
    get_calculator(config)
    return [os.getpid() for _ in chunk]


def die(chunk: list[int]) -> list[int]:
    os._exit(3)


def crystals() -> list:  # type: ignore[type-arg]
    return [bulk("Cu", "fcc", a=3.5 + 0.05 * i) for i in range(6)]


def two_stages(config: CountedEMT) -> tuple[list, list]:  # type: ignore[type-arg]
    volume = relax(crystals(), VolumeRelax(calculator=config, max_steps=5), workers=2,
                   progress=False)
    full = relax(volume, FullRelax(calculator=config, max_steps=5), workers=2, progress=False)
    return volume, full


def test_stages_share_worker_processes_and_their_calculators(tmp_path: Path) -> None:
    builds = tmp_path / "pids"
    builds.touch()
    config = CountedEMT(builds=str(builds))
    with shared_workers():
        first = map_chunks(where_built, (config,), list(range(8)), workers=2, chunksize=1)
        second = map_chunks(where_built, (config,), list(range(8)), workers=2, chunksize=1)
        shared_volume, shared_full = two_stages(config)
    assert len(set(first) | set(second)) <= 2 and os.getpid() not in first  # same processes
    built = builds.read_text().split()
    assert len(built) == len(set(built)) <= 2  # once per worker process for the whole run
    assert set(built) <= set(map(str, first))
    # without it, each stage starts and stops its own workers, which build again
    builds.write_text("")
    volume, full = two_stages(config)
    again = builds.read_text().split()
    assert len(set(again)) >= 2 and not set(again) & set(built)  # new processes per stage
    # results are those of stage-owned pools, bit for bit
    for ours, theirs in ((shared_volume, volume), (shared_full, full)):
        assert [a.info["uuid"] for a in ours] == [a.info["uuid"] for a in theirs]
        assert [a.get_potential_energy() for a in ours] == [
            a.get_potential_energy() for a in theirs
        ]


def test_pools_stop_when_the_outermost_context_ends(tmp_path: Path) -> None:
    config = CountedEMT(builds=str(tmp_path / "pids"))
    with shared_workers():
        with shared_workers():
            inner = set(map_chunks(where_built, (config,), [1, 2, 3, 4], workers=2, chunksize=1))
        still = set(map_chunks(where_built, (config,), [1, 2, 3, 4], workers=2, chunksize=1))
        assert still <= inner  # the inner context's end left the pool open
        assert all(psutil.pid_exists(pid) for pid in inner)
    gone = [pid for pid in inner if psutil.pid_exists(pid)]
    for pid in gone:  # a zombie at most: reaped by now unless still exiting
        assert psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    after = set(map_chunks(where_built, (config,), [1, 2, 3, 4], workers=2, chunksize=1))
    assert not after & inner


def test_a_pool_whose_worker_died_is_replaced_at_the_next_stage(tmp_path: Path) -> None:
    config = CountedEMT(builds=str(tmp_path / "pids"))
    with shared_workers():
        before = set(map_chunks(where_built, (config,), [1, 2], workers=2, chunksize=1))
        lost = map_chunks(die, (), [1, 2], workers=2, chunksize=1,
                          lost=lambda item, error: Drop(item, "worker_lost", str(error)))
        assert [d.reason for d in lost] == ["worker_lost", "worker_lost"]
        after = map_chunks(where_built, (config,), [1, 2, 3], workers=2, chunksize=1)
    assert len(after) == 3 and not set(after) & before


WARM = """
import sys, threading
from assyst_nodes.runtime.fanout import map_chunks, shared_workers, start_method, warm_workers


def imported(names, chunk):
    return [sorted(n for n in names if n in sys.modules) for _ in chunk]


if __name__ == "__main__":
    names = ["json.tool", "assyst_nodes.stages.relax", "no_such_module_here"]
    assert "json.tool" not in sys.modules
    print("STARTED", warm_workers(["json.tool", "no_such_module_here"]))
    print("AGAIN", warm_workers(["csv"]))  # the server runs: its modules cannot change
    stop = threading.Event()
    threading.Thread(target=stop.wait).start()  # a threaded process uses the fork server
    print("METHOD", start_method())
    with shared_workers():
        print("WORKERS", map_chunks(imported, (names,), [1, 2], workers=2, chunksize=1)[0])
    print("HERE", "json.tool" in sys.modules)
    stop.set()
"""


def test_warm_workers_start_with_the_modules_imported(tmp_path: Path) -> None:
    import subprocess
    import sys

    script = tmp_path / "warm.py"
    script.write_text(WARM)
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = dict(line.split(" ", 1) for line in done.stdout.splitlines())
    assert lines["STARTED"] == "True" and lines["AGAIN"] == "False"
    assert lines["METHOD"] == "forkserver"
    # the workers came with the modules (a missing one is left out); this process has none
    assert lines["WORKERS"] == "['assyst_nodes.stages.relax', 'json.tool']"
    assert lines["HERE"] == "False"
