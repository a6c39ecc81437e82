"""Faults of a project run: the process SIGKILLed at random points ten times in a row, two
pipelines writing into one project at once, damaged or half-written job files, stale jobs, and
a calculator that fails inside a recorded run. Nothing may be lost and no job duplicated.

Runs are forked from one "zygote" process that imported pyiron_workflow once (an import takes
~8 s per process), so each killed run is a real process killed with SIGKILL at a random moment
of its work, without paying the import again.
"""

from __future__ import annotations

import json
import os
import pickle
import random
import select
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from ase.calculators.emt import EMT as AseEMT
from stand_ins import cubes, shifted

from assyst_nodes.lineage import UUID, update_uuid
from assyst_nodes.project import (
    DamagedJobError,
    ProjectRecorder,
    history,
    open_project,
    rerun,
    stale_jobs,
    structure_frame,
    structures,
)
from assyst_nodes.project.index import Index
from assyst_nodes.project.layout import read_output
from assyst_nodes.project.recorder import _locked, job_name
from assyst_nodes.project.store import read_file, write_file

pytestmark = pytest.mark.usefixtures("pyiron_database")  # SQLite and PostgreSQL

ZYGOTE = textwrap.dedent(
    """
    import json, os, pickle, sys, traceback
    import pyiron_workflow as pwf
    from assyst_nodes import nodes
    from assyst_nodes.project import ProjectRecorder
    import assyst_nodes.project.recorder  # pyiron_base, imported once here

    TINY = dict(
        max_atoms=2, spacegroups=[1, 2, 6, 10, 25, 47, 123, 191, 221], max_structures=4,
        volume_relax=nodes.VolumeRelax(max_steps=15), full_relax=nodes.FullRelax(max_steps=15),
    )

    def run(folder, seed, pipeline, out):
        recorder = ProjectRecorder(folder, pipeline=pipeline)
        result = pwf.run(nodes.assyst, **TINY, seed=seed, recorder=recorder).outputs
        found = [(s.info["uuid"], s.positions.tobytes(), s.cell.array.tobytes())
                 for s in result.training_set]
        with open(out + ".part", "wb") as handle:
            pickle.dump(found, handle)
        os.replace(out + ".part", out)

    def answer(message):
        sys.stdout.write(json.dumps(message) + "\\n")
        sys.stdout.flush()

    answer({"ready": True})
    for line in sys.stdin:
        command = json.loads(line)
        if command["op"] == "run":
            pid = os.fork()
            if pid == 0:  # the run: a process of its own, killed by the test
                os.dup2(2, 1)  # keep the protocol channel clean
                code = 0
                try:
                    run(command["folder"], command["seed"], command["pipeline"], command["out"])
                except BaseException:
                    traceback.print_exc()
                    code = 1
                sys.stderr.flush()
                os._exit(code)
            answer({"pid": pid})
        elif command["op"] == "wait":
            _, status = os.waitpid(command["pid"], 0)
            answer({
                "code": os.WEXITSTATUS(status) if os.WIFEXITED(status) else None,
                "signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else None,
            })
    """
)

SEEDS = (11, 12)


class Zygote:
    """Client of the zygote process: fork runs, wait for them."""

    def __init__(self, folder: Path, env: dict[str, str]) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "home").mkdir(exist_ok=True)
        (folder / "zygote.py").write_text(ZYGOTE)
        self.log = folder / "zygote.log"
        self.process = subprocess.Popen(
            [sys.executable, str(folder / "zygote.py")],
            cwd=folder,
            env={**env, "HOME": str(folder / "home"), "MPLBACKEND": "Agg"},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=open(self.log, "wb"),
            text=True,
        )
        assert self._read(300)["ready"]

    def _read(self, timeout: float) -> dict[str, Any]:
        assert self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], timeout)
        line = self.process.stdout.readline() if ready else ""
        if not line:
            raise AssertionError(f"zygote silent; its log:\n{self.log.read_text()[-3000:]}")
        return json.loads(line)

    def _send(self, command: dict[str, Any]) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()

    def start(self, folder: Path, seed: int, pipeline: str, out: Path) -> int:
        self._send(
            {
                "op": "run",
                "folder": str(folder),
                "seed": seed,
                "pipeline": pipeline,
                "out": str(out),
            }
        )
        return int(self._read(60)["pid"])

    def wait(self, pid: int, timeout: float = 300) -> dict[str, Any]:
        self._send({"op": "wait", "pid": pid})
        return self._read(timeout)

    def run(self, folder: Path, seed: int, pipeline: str, out: Path) -> dict[str, float]:
        """A whole run: when (s after its start) each stage job was seen finished, and its end
        (key ``""``)."""
        start = time.monotonic()
        pid = self.start(folder, seed, pipeline, out)
        seen: dict[str, float] = {}
        while not out.exists() and time.monotonic() - start < 300:
            for _, job, status, kind in table_rows(folder):
                if status == "finished" and kind != "AssystPipeline":
                    seen.setdefault(job, time.monotonic() - start)
            time.sleep(0.02)
        status = self.wait(pid)
        assert status["code"] == 0, self.log.read_text()[-3000:]
        seen[""] = time.monotonic() - start
        return seen

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=60)


def table_rows(folder: Path) -> list[tuple[int, str, str, str]]:
    """(id, job, status, hamilton) of every job-table row of the project folder."""
    if not folder.is_dir():
        return []
    project = open_project(folder)
    rows = project.db.get_items_dict({"project": project.project_path})
    return sorted((int(r["id"]), str(r["job"]), str(r["status"]), str(r["hamilton"])) for r in rows)


def stage_names(folder: Path) -> list[str]:
    return sorted(job for _, job, _, kind in table_rows(folder) if kind != "AssystPipeline")


def stored_uuids(folder: Path) -> set[str]:
    return set(structure_frame(folder)["uuid"])


def load(path: Path) -> list[tuple[Any, ...]]:
    with open(path, "rb") as handle:
        return pickle.load(handle)


@pytest.fixture(scope="module")
def zygotes() -> Iterator[dict[str, Any]]:
    """Zygote processes and their reference runs, one per database kind (made on first use)."""
    made: dict[str, Any] = {}
    yield made
    for client, _ in made.values():
        client.close()


@pytest.fixture
def zygote(
    zygotes: dict[str, Any], pyiron_database: str, tmp_path_factory: pytest.TempPathFactory
) -> Zygote:
    """The zygote of this test's database (its environment: the PYIRON* variables now set)."""
    if pyiron_database not in zygotes:
        folder = tmp_path_factory.mktemp(f"zygote_{pyiron_database}")
        zygotes[pyiron_database] = (Zygote(folder, dict(os.environ)), {})
    return zygotes[pyiron_database][0]


@pytest.fixture
def references(
    zygotes: dict[str, Any],
    zygote: Zygote,
    pyiron_database: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[int, Any]:
    """Uninterrupted runs, one project per seed: job names, stored uuids, training set, time."""
    out = zygotes[pyiron_database][1]
    for seed in SEEDS:
        if seed in out:
            continue
        folder = tmp_path_factory.mktemp(f"reference{seed}_{pyiron_database}")
        timeline = zygote.run(folder / "project", seed, "reference", folder / "training.pkl")
        out[seed] = {
            "jobs": stage_names(folder / "project"),
            "uuids": stored_uuids(folder / "project"),
            "training": load(folder / "training.pkl"),
            "timeline": timeline,
        }
    return out


# ----------------------------------------------------------------------------------------------
# SIGKILL at random points, ten times in a row


def test_ten_sigkills_at_random_points_resume_to_the_uninterrupted_result(
    zygote: Zygote, references: dict[int, Any], tmp_path: Path
) -> None:
    seed = SEEDS[0]
    reference = references[seed]
    folder = tmp_path / "project"
    rng = random.Random(8)
    timeline = reference["timeline"]
    order = sorted((t, job) for job, t in timeline.items() if job)
    duration = {job: t - (order[k - 1][0] if k else 0.0) for k, (t, job) in enumerate(order)}
    out = tmp_path / "training.pkl"
    figures: dict[str, Any] = {
        "kills": 0,
        "finished_first": 0,
        "kill_points": [],
        "jobs_done_after_kill": [],
        "unfinished_rows_after_kill": [],
    }
    start = time.monotonic()
    while figures["kills"] < 10:
        assert figures["kills"] + figures["finished_first"] < 30, figures
        rows = table_rows(folder)
        # stage jobs: a pipeline job's status is its stage jobs' (running while one runs)
        before = {
            (i, job) for i, job, status, kind in rows
            if status == "finished" and kind != "AssystPipeline"
        }
        # a random point of the work left: a random unfinished job, then a random part of its
        # duration in the uninterrupted run after either its lock file exists (made just before
        # its row; a job killed before has one from the start, so the kill may come while
        # earlier jobs are read back) or its row is (re)made, i.e. inside the job
        left = [job for _, job in order if job not in {name for _, name in before}]
        target = rng.choice(left) if left else ""
        trigger = rng.choice(["lock", "row"])
        old_ids = {i for i, job, _, _ in rows if job == target}
        share = 0.9 if trigger == "lock" else 0.5  # a remade row is already into the job
        delay = rng.uniform(0.0, share * duration.get(target, 0.3))
        out.unlink(missing_ok=True)
        pid = zygote.start(folder, seed, "killed", out)
        while target and not out.exists():
            if trigger == "lock" and (folder / ".locks" / f"{target}.lock").exists():
                break
            if trigger == "row" and any(
                job == target and i not in old_ids for i, job, _, _ in table_rows(folder)
            ):
                break
            time.sleep(0.005)
        time.sleep(delay)
        os.kill(pid, signal.SIGKILL)
        status = zygote.wait(pid)
        rows = table_rows(folder)
        names = [job for _, job, _, _ in rows]
        assert len(names) == len(set(names)), f"duplicate jobs after a kill: {sorted(names)}"
        after = {
            (i, job) for i, job, status_, kind in rows
            if status_ == "finished" and kind != "AssystPipeline"
        }
        assert before <= after, "a finished job was computed again instead of resumed"
        if status["signal"] == signal.SIGKILL:
            figures["kills"] += 1
            figures["kill_points"].append(f"{target.split('_')[0]} {trigger}+{delay:.2f}s")
            figures["jobs_done_after_kill"].append(
                sum(s == "finished" and k != "AssystPipeline" for _, _, s, k in rows)
            )
            figures["unfinished_rows_after_kill"].append(
                [s for *_, s, _ in rows if s != "finished"]
            )
        else:
            assert status["code"] == 0, zygote.log.read_text()[-3000:]
            figures["finished_first"] += 1

    out.unlink(missing_ok=True)
    zygote.run(folder, seed, "killed", out)
    figures["seconds"] = round(time.monotonic() - start, 1)
    rows = table_rows(folder)
    names = [job for _, job, _, _ in rows]
    assert len(names) == len(set(names))
    assert {status for _, _, status, _ in rows} == {"finished"}  # none stuck running
    assert stage_names(folder) == reference["jobs"]
    assert stale_jobs(folder) == []
    assert load(tmp_path / "training.pkl") == reference["training"]  # uuids, positions, cells
    assert [
        (s.info[UUID], s.positions.tobytes(), s.cell.array.tobytes())
        for s in structures(folder, stage="filter")
    ] == reference["training"]
    lost = reference["uuids"] - stored_uuids(folder)
    figures["structures_lost"] = len(lost)
    figures["structures_stored"] = len(stored_uuids(folder))
    print("SIGKILL figures:", figures)
    assert not lost


# ----------------------------------------------------------------------------------------------
# two pipelines at once


@pytest.mark.parametrize("seeds", [SEEDS, (SEEDS[0], SEEDS[0])], ids=["two seeds", "same seed"])
def test_two_pipelines_writing_into_one_project_at_once_both_complete_and_lose_nothing(
    zygote: Zygote, references: dict[int, Any], tmp_path: Path, seeds: tuple[int, int]
) -> None:
    folder = tmp_path / "project"
    outs = [tmp_path / f"training{k}.pkl" for k in range(2)]
    pids = [zygote.start(folder, seed, f"pipeline{k}", outs[k]) for k, seed in enumerate(seeds)]
    for pid in pids:
        assert zygote.wait(pid)["code"] == 0, zygote.log.read_text()[-3000:]
    for seed, out in zip(seeds, outs, strict=True):
        assert load(out) == references[seed]["training"]
    rows = table_rows(folder)
    names = [job for _, job, _, _ in rows]
    assert len(names) == len(set(names))  # every job there once
    assert {status for _, _, status, _ in rows} == {"finished"}
    # every pipeline run leaves its row, also one that only reused the other one's jobs
    assert sum(kind == "AssystPipeline" for *_, kind in rows) == 2
    expected = sorted(set().union(*(references[seed]["jobs"] for seed in seeds)))
    assert stage_names(folder) == expected
    assert stored_uuids(folder) == set().union(*(references[seed]["uuids"] for seed in seeds))


# ----------------------------------------------------------------------------------------------
# damaged and half-written files (in this process, with cheap stand-in stages)


def record_two(folder: Path) -> tuple[list[Atoms], list[Atoms], str]:
    """cubes -> shift into ``folder``; the shift job's name."""
    recorder = ProjectRecorder(folder)
    made, _ = recorder.record("cubes", {"seed": 1}, [], cubes)
    moved, _ = recorder.record("shift", {}, [made], lambda: shifted(made))
    return made, moved, job_name("shift", {}, [made])


def fingerprint(found: list[Atoms]) -> list[tuple[Any, ...]]:
    return [(a.info[UUID], a.positions.tobytes(), a.cell.array.tobytes()) for a in found]


def truncate(path: Path) -> None:
    with open(path, "r+b") as handle:
        handle.truncate(path.stat().st_size // 2)


def empty(path: Path) -> None:
    path.write_bytes(b"")


def flip_cells(path: Path, name: str | None = None) -> None:
    """Overwrite bytes of the stored cells (as a bad disk block would), wherever their layout
    keeps them (a chunk, or the dataset's object header)."""
    key = "cell" if name is None else f"{name}/output/structures/cell"
    with h5py.File(path, "r") as handle:
        cells = handle[key][...].tobytes()
    content = path.read_bytes()
    offset = content.index(cells)
    assert content.count(cells) == 1
    with open(path, "r+b") as handle:
        handle.seek(offset + 8)
        handle.write(b"\x13\x37" * 8)


def half_written(path: Path, name: str) -> None:
    """As if the process died inside the write of the output store."""
    with h5py.File(path, "a") as handle:
        del handle[f"{name}/output/structures"].attrs["n_structures"]


@pytest.mark.parametrize(
    ("damage", "says"),
    [
        (truncate, "truncated"),
        (empty, "cannot be read"),
        (lambda path, name: flip_cells(path, name), "checksum"),
        (half_written, "half-written"),
        (lambda path, name: path.unlink(), "cannot be read"),
    ],
    ids=["truncated", "empty", "flipped bytes", "half-written", "deleted"],
)
def test_a_damaged_job_file_is_named_on_load_and_recomputed_on_rerun(
    tmp_path: Path, damage: Any, says: str
) -> None:
    folder = tmp_path / "project"
    _, moved, name = record_two(folder)
    file = folder / f"{name}.h5"
    damage(*((file,) if damage in (truncate, empty) else (file, name)))
    for load_it in (
        lambda: structures(folder),
        lambda: read_output(file, name),
        lambda: structure_frame(folder, stage="shift"),
        lambda: history(folder, moved[0].info[UUID]),  # a point query reads the damaged job
    ):
        with pytest.raises(DamagedJobError) as error:
            load_it()
        assert name in str(error.value) and str(file) in str(error.value)
        assert says in str(error.value) or says == "cannot be read"
    if damage in (truncate, empty):  # pyiron cannot even load the job
        with pytest.raises(DamagedJobError, match=name):
            rerun(folder, name)
    # the recorder treats it as stale: computed again, reported, not duplicated
    with pytest.warns(RuntimeWarning, match=f"{name}.*computing it again"):
        _, again, _ = record_two(folder)
    assert fingerprint(again) == fingerprint(moved)
    assert fingerprint(structures(folder, stage="shift")) == fingerprint(moved)
    rows = table_rows(folder)
    assert sorted(job for _, job, _, _ in rows) == sorted({job for _, job, _, _ in rows})
    assert {status for _, _, status, _ in rows} == {"finished"}


@pytest.mark.parametrize("damage", [truncate, empty, flip_cells, lambda p: p.write_text("x")])
def test_a_damaged_structure_store_file_is_named_on_load(tmp_path: Path, damage: Any) -> None:
    path = tmp_path / "store.h5"
    write_file(path, cubes()[0])
    damage(path)
    with pytest.raises(ValueError, match=str(path)):
        read_file(path)


def test_a_finished_job_missing_from_the_index_is_indexed_again(tmp_path: Path) -> None:
    """Killed between marking the job finished and indexing it: the next query or rerun
    takes it in from its file."""
    folder = tmp_path / "project"
    _, moved, name = record_two(folder)
    Index(folder).remove_job(name)
    assert name not in Index(folder).jobs()
    assert fingerprint(structures(folder, stage="shift")) == fingerprint(moved)
    assert name in Index(folder).jobs()
    Index(folder).remove_job(name)
    record_two(folder)  # reuses the job and indexes it
    assert name in Index(folder).jobs()
    with sqlite3.connect(folder / "assyst_index.db") as db:  # once: no duplicate rows
        count = db.execute("SELECT COUNT(*) FROM structures WHERE name = ?", (name,)).fetchone()
    assert count[0] == len(moved)
    assert len(table_rows(folder)) == 2


def test_a_pipeline_job_left_unfinished_is_made_again(tmp_path: Path) -> None:
    folder = tmp_path / "project"
    recorder = ProjectRecorder(folder, pipeline="p")
    project = open_project(folder)
    recorder.pipeline_job_id()
    ((pipeline_id, pipeline_name, _, _),) = table_rows(folder)
    project.db.set_job_status("created", pipeline_id)
    recorder.record("cubes", {"seed": 1}, [], cubes)
    rows = table_rows(folder)
    assert {status for _, _, status, _ in rows} == {"finished"}
    assert [job for _, job, _, kind in rows if kind == "AssystPipeline"] == [pipeline_name]


def project_folder(path: Path) -> Path:
    from assyst_nodes.project.database import project_folder as folder_of

    return folder_of(path)


def test_stale_jobs_are_those_no_live_process_holds_and_can_be_removed(tmp_path: Path) -> None:
    folder = tmp_path / "project"
    _, _, name = record_two(folder)
    project = open_project(folder)
    job_id = next(i for i, job, _, _ in table_rows(folder) if job == name)
    project.db.set_job_status("running", job_id)
    assert stale_jobs(folder) == [name]
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with _locked(folder, name):  # a live recorder computing it
            held.set()
            release.wait(30)

    thread = threading.Thread(target=hold)
    thread.start()
    held.wait(30)
    try:
        assert stale_jobs(folder, remove=True) == []
    finally:
        release.set()
        thread.join()
    assert stale_jobs(folder, remove=True) == [name]
    assert [job for _, job, _, _ in table_rows(folder)] == [job_name("cubes", {"seed": 1}, [])]
    assert not (folder / f"{name}.h5").exists()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        record_two(folder)  # computed again
    assert len(table_rows(folder)) == 2


# ----------------------------------------------------------------------------------------------
# a calculator that fails inside a recorded run


class FailingEMT(AseEMT):
    """EMT that raises on 2-atom cells and never returns on 4-atom cells."""

    def calculate(self, atoms: Any = None, *args: Any, **kwargs: Any) -> None:
        n = len(atoms if atoms is not None else self.atoms)
        if n == 2:
            raise RuntimeError("the calculator exploded")
        if n == 4:
            time.sleep(3600)
        super().calculate(atoms, *args, **kwargs)


def test_a_failing_calculator_in_a_project_run_finishes_the_job_and_stores_the_failures(
    tmp_path: Path,
) -> None:
    from assyst_nodes.calculators import ImportedCalculator
    from assyst_nodes.nodes import stages
    from assyst_nodes.stages.relax import VolumeRelax

    folder = tmp_path / "project"
    recorder = ProjectRecorder(folder)
    cells = [
        bulk("Cu", "fcc", a=3.6),
        bulk("Cu", "bcc", a=2.9, cubic=True),
        bulk("Cu", "fcc", a=3.6, cubic=True),
        bulk("Ag", "fcc", a=4.1),
    ]
    inputs = [update_uuid(atoms, "fixture", str(k)) for k, atoms in enumerate(cells)]
    settings = VolumeRelax(
        max_steps=5, calculator=ImportedCalculator("test_project_faults:FailingEMT")
    )
    relaxed, report = stages.relax(inputs, settings, recorder=recorder, time_limit=3.0)
    assert len(relaxed) == 2
    assert report.dropped == {"calculator_error": 1, "time_limit": 1}
    name = job_name("relax", {"settings": settings, "time_limit": 3.0}, [inputs])
    assert name != job_name("relax", {"settings": settings}, [inputs])  # the limit is hashed
    ((_, job, status, _),) = table_rows(folder)
    assert (job, status) == (name, "warning")  # structures were lost to errors: not "finished"
    _, stored = read_output(folder / f"{name}.h5", name)
    assert stored.dropped == {"calculator_error": 1, "time_limit": 1}
    assert any("exploded" in drop.detail for drop in stored.drops)
    again, report_again = stages.relax(inputs, settings, recorder=recorder, time_limit=3.0)
    assert fingerprint(again) == fingerprint(relaxed)  # reused, not computed again
    assert report_again.drops == report.drops
    assert len(table_rows(folder)) == 1
    assert all(np.isfinite(a.get_potential_energy()) for a in again)


HANGING_CALCULATOR = textwrap.dedent(
    """
    import time
    from ase.calculators.emt import EMT

    class HangingEMT(EMT):
        '''EMT that never returns on cells of two atoms.'''

        def calculate(self, atoms=None, *args, **kwargs):
            if len(atoms if atoms is not None else self.atoms) == 2:
                time.sleep(3600)
            super().calculate(atoms, *args, **kwargs)
    """
)


def test_the_macro_passes_its_time_limits_to_the_stages_and_the_jobs_record_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pyiron_workflow as pwf

    from assyst_nodes import nodes

    (tmp_path / "hanging_calculator.py").write_text(HANGING_CALCULATOR)
    monkeypatch.syspath_prepend(str(tmp_path))
    folder = tmp_path / "project"
    out = pwf.run(
        nodes.assyst,
        max_atoms=2,
        spacegroups=[1, 2, 6, 10, 25, 47, 123, 191, 221],
        max_structures=4,
        volume_relax=nodes.VolumeRelax(max_steps=15),
        full_relax=nodes.FullRelax(max_steps=15),
        seed=11,
        calculator=nodes.ImportedCalculator("hanging_calculator:HangingEMT"),
        sample_time_limit=60.0,
        relax_time_limit=2.0,
        recorder=ProjectRecorder(folder),
    ).outputs
    pairs = [a for a in out.sampled if len(a) == 2]
    assert pairs, "the tiny run should sample a two-atom cell"
    assert out.volume_report.dropped == {"time_limit": len(pairs)}
    assert all(len(a) != 2 for a in out.training_set if a.calc is not None)
    rows = table_rows(folder)
    statuses = {job: status for _, job, status, _ in rows}
    settings = nodes.VolumeRelax(
        max_steps=15, calculator=nodes.ImportedCalculator("hanging_calculator:HangingEMT")
    )
    name = job_name("relax", {"settings": settings, "time_limit": 2.0}, [out.sampled])
    assert statuses[name] == "warning"  # lost structures to the time limit
    assert {s for job, s in statuses.items() if job != name} <= {"finished", "warning"}
    _, stored = read_output(folder / f"{name}.h5", name)
    assert stored.dropped == {"time_limit": len(pairs)}
