"""Tests of the project layer: pyiron jobs per stage, reuse, stale jobs, queries, export."""

from __future__ import annotations

import errno
import os
import pickle
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

import ase.io
import numpy as np
import pandas as pd
import pytest
from ase import Atoms
from ase.build import bulk

from assyst_nodes.lineage import LINEAGE, UUID
from assyst_nodes.project import (
    AssystRelax,
    AssystSample,
    Link,
    ProjectRecorder,
    export_extxyz,
    export_table,
    history,
    open_project,
    structure_frame,
    structures,
)
from assyst_nodes.project.jobs import JobInput
from assyst_nodes.reports import StageReport
from assyst_nodes.stages.relax import VolumeRelax, relax
from assyst_nodes.stages.sample import Formulas, sample

pytestmark = pytest.mark.usefixtures("pyiron_database")  # SQLite and PostgreSQL

RELAX = VolumeRelax(max_steps=5)

# The same tiny stages as plain code, for this process and for subprocesses.
STAGES = textwrap.dedent(
    """
    from assyst_nodes.stages.sample import Formulas, sample
    from assyst_nodes.stages.relax import VolumeRelax, relax
    from assyst_nodes.reports import StageReport

    RELAX = VolumeRelax(max_steps=5)

    def do_sample(seed=1):
        report = StageReport("sample")
        found = list(
            sample(Formulas.range("Cu", 1, 3), [221, 225, 229], max_atoms=2, rng=seed,
                   report=report)
        )
        return found, report

    def do_relax(structures):
        report = StageReport("relax")
        return relax(structures, RELAX, report=report), report
    """
)


# Cheap stand-ins for subprocesses that test storage, not the stages (no pyxtal, no EMT).
LIGHT = textwrap.dedent(
    """
    from ase.build import bulk
    from ase.calculators.singlepoint import SinglePointCalculator
    from assyst_nodes.lineage import update_uuid
    from assyst_nodes.reports import StageReport

    def cubes(seed=1):
        report = StageReport("sample")
        found = [
            update_uuid(bulk("Cu", "fcc", a=3.5 + 0.01 * k + seed, cubic=True), "cubes", (seed, k))
            for k in range(4)
        ]
        return found, report

    def shifted(structures):
        out = []
        for atoms in structures:
            moved = atoms.copy()
            moved.positions += 0.01
            forces = 0.1 * moved.positions[::-1]
            moved.calc = SinglePointCalculator(moved, energy=-3.5 * len(moved), forces=forces)
            out.append(update_uuid(moved, "shift", ""))
        return out, StageReport("shift", n_in=len(structures), n_out=len(out))
    """
)


def do_sample(seed: int = 1) -> tuple[list[Atoms], StageReport]:
    """Cu1 and Cu2 crystals in groups 221, 225, 229 (a few structures, well under a second)."""
    report = StageReport("sample")
    found = list(
        sample(Formulas.range("Cu", 1, 3), [221, 225, 229], max_atoms=2, rng=seed, report=report)
    )
    return found, report


def do_relax(structures: list[Atoms]) -> tuple[list[Atoms], StageReport]:
    """Five volume-relaxation steps with EMT."""
    report = StageReport("relax")
    return relax(structures, RELAX, report=report), report


def fail() -> tuple[list[Atoms], StageReport]:
    """A compute that must not be called."""
    raise AssertionError("compute was called although the run is stored")


def run_pipeline(recorder: ProjectRecorder) -> tuple[list[Atoms], list[Atoms]]:
    """Record sample -> relax."""
    sampled, _ = recorder.record("sample", {"seed": 1}, [], do_sample)
    relaxed, _ = recorder.record("relax", {"settings": RELAX}, [sampled], lambda: do_relax(sampled))
    return sampled, relaxed


def python(code: str, cwd: Path, wait: bool = True, header: str = STAGES) -> subprocess.Popen[str]:
    """Run ``code`` (after the shared stage definitions) in a new interpreter."""
    process = subprocess.Popen(
        [sys.executable, "-c", header + textwrap.dedent(code)],
        cwd=cwd,
        env=dict(os.environ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    if wait:
        _, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
    return process


def job_rows(path: Path) -> pd.DataFrame:
    """The job table of the project at ``path``."""
    return open_project(path).job_table()


def assert_same(a: list[Atoms], b: list[Atoms]) -> None:
    """Equal positions, cells, numbers, pbc, info and calculator results."""
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        assert np.array_equal(x.numbers, y.numbers)
        assert np.array_equal(x.positions, y.positions)
        assert np.array_equal(x.cell.array, y.cell.array)
        assert np.array_equal(x.pbc, y.pbc)
        assert {k: list(v) if k == LINEAGE else v for k, v in x.info.items()} == {
            k: list(v) if k == LINEAGE else v for k, v in y.info.items()
        }
        if x.calc is None:
            assert y.calc is None
        else:
            assert x.get_potential_energy() == y.get_potential_energy()
            assert np.array_equal(x.get_forces(), y.get_forces())


# ----------------------------------------------------------------------------------------------


def test_public_names_resolve_to_the_project_layer() -> None:
    import inspect

    import assyst_nodes.project as project

    assert len(project.__all__) == len(set(project.__all__))
    assert set(dir(project)) >= set(project.__all__)
    for name in project.__all__:
        value = getattr(project, name)
        if inspect.isclass(value) or inspect.isfunction(value):
            where = value.__module__
            assert where.startswith("assyst_nodes.project."), (name, where)
            assert getattr(sys.modules[where], name) is value, name  # defined where it says


def test_recorder_is_plain_and_picklable(tmp_path: Path) -> None:
    recorder = ProjectRecorder(tmp_path / "proj", pipeline="run")
    assert recorder.path == str(tmp_path / "proj")  # a plain string, not a live object
    copy = pickle.loads(pickle.dumps(recorder))
    assert copy == recorder and copy.pipeline == "run"
    found, _ = copy.record("cubes", {"seed": 1}, [], do_sample)  # the copy records into it
    assert list(job_rows(tmp_path / "proj")["status"]) == ["finished", "finished"]
    assert [a.info[UUID] for a in found] == [a.info[UUID] for a in do_sample()[0]]


def test_job_table_rows_have_stage_class_status_parent_and_no_master(tmp_path: Path) -> None:
    recorder = ProjectRecorder(tmp_path / "proj", pipeline="demo")
    run_pipeline(recorder)
    table = job_rows(tmp_path / "proj").set_index("hamilton")
    assert set(table.index) == {"AssystPipeline", "AssystSample", "AssystRelax"}
    assert set(table["status"]) == {"finished"}
    sample_id = table.loc["AssystSample", "id"]
    # a stage job may serve several pipelines: it is nobody's pyiron child
    assert table["masterid"].isna().all()
    assert table.loc["AssystRelax", "parentid"] == sample_id
    assert pd.isna(table.loc["AssystSample", "parentid"])
    project = open_project(tmp_path / "proj")
    pipeline = project.load(table.loc["AssystPipeline", "job"])
    assert pipeline.output["jobs"] == [table.loc["AssystSample", "job"], table.loc[
        "AssystRelax", "job"]]
    assert pipeline.output["missing"] == []
    job = project.load(table.loc["AssystRelax", "job"])
    assert isinstance(job, AssystRelax)
    assert job.input.stage == "relax"
    assert job.input.settings == RELAX
    assert "VolumeRelax" in job.content["input/settings"]
    assert job.settings_object() == {"settings": RELAX}
    assert job.input.structures == [JobInput(table.loc["AssystSample", "job"])]
    assert job.report().n_out == len(job.structures())
    assert len(job.input_uuids()[0]) == job.report().n_in


def test_input_references_name_the_producers_of_each_input_list(tmp_path: Path) -> None:
    light: dict[str, Any] = {}
    exec(LIGHT, light)
    recorder = ProjectRecorder(tmp_path / "proj")
    found, _ = recorder.record("cubes", {"seed": 1}, [], light["cubes"])
    moved, _ = recorder.record("shift", {}, [found], lambda: light["shifted"](found))
    part, _ = recorder.record("shift", {}, [found[1:]], lambda: light["shifted"](found[1:]))
    both, _ = recorder.record(
        "combine", {}, [moved, found], lambda: (moved + found, StageReport("combine"))
    )
    project = open_project(tmp_path / "proj")
    table = project.job_table().set_index("id")
    ids = list(table.index)
    assert table.loc[ids[1], "parentid"] == ids[0]
    assert table.loc[ids[2], "parentid"] == ids[0]  # a subset: the job that made its first uuid
    assert table.loc[ids[3], "parentid"] == ids[1]
    names = list(table["job"])
    assert project.load(ids[3]).input.structures == [JobInput(names[1]), JobInput(names[0])]
    assert set(table["hamilton"]) == {"AssystStage", "AssystCombine"}
    # combine passes structures on: queries without a job give each uuid once, from its maker
    made = {a.info[UUID] for a in found + moved + part}  # part repeats uuids of moved
    assert sorted(a.info[UUID] for a in structures(tmp_path / "proj")) == sorted(made)
    assert len(structures(tmp_path / "proj", stage="combine")) == len(both)
    chain = history(tmp_path / "proj", moved[0].info[UUID])
    assert [link.job_id for link in chain] == [ids[0], ids[1]]


def test_rerun_with_identical_inputs_reuses_jobs(tmp_path: Path) -> None:
    recorder = ProjectRecorder(tmp_path / "proj")
    sampled, relaxed = run_pipeline(recorder)
    rows = len(job_rows(tmp_path / "proj"))
    again, report = recorder.record("sample", {"seed": 1}, [], fail)
    assert_same(again, sampled)
    assert isinstance(report, StageReport)
    assert report.n_out == len(sampled)
    relaxed_again, _ = recorder.record("relax", {"settings": RELAX}, [again], fail)
    assert_same(relaxed_again, relaxed)
    assert len(job_rows(tmp_path / "proj")) == rows


def test_reloaded_report_equals_computed_one(tmp_path: Path) -> None:
    recorder = ProjectRecorder(tmp_path / "proj")
    report = StageReport("filter", n_in=3, n_out=1)
    report.drop("a", "too_close", "0.5 Å")
    report.flag("not_converged", 2)
    report.seconds = 0.125
    computed = recorder.record("filter", {}, [], lambda: ([], report))
    assert recorder.record("filter", {}, [], fail) == computed


def test_new_process_with_fresh_home_reloads_identically_and_writes_nothing_home(
    tmp_path: Path, pyiron_database: str
) -> None:
    light: dict[str, Any] = {}
    exec(LIGHT, light)
    recorder = ProjectRecorder(tmp_path / "proj", pipeline="here")
    found, _ = recorder.record("cubes", {"seed": 1}, [], light["cubes"])
    moved, _ = recorder.record("shift", {}, [found], lambda: light["shifted"](found))

    home = tmp_path / "fresh_home"
    home.mkdir()
    env = dict(os.environ, HOME=str(home))
    env.pop("PYIRONCONFIG", None)
    code = LIGHT + textwrap.dedent(
        """
        import pickle, sys
        from assyst_nodes.project import ProjectRecorder

        def fail():
            raise AssertionError("computed again")

        recorder = ProjectRecorder("proj", pipeline="there")
        found, _ = recorder.record("cubes", {"seed": 1}, [], fail)
        moved, _ = recorder.record("shift", {}, [found], fail)
        with open("reloaded.pkl", "wb") as handle:
            pickle.dump((found, moved), handle)
        ProjectRecorder("other").record("cubes", {"seed": 2}, [], lambda: cubes(2))
        """
    )
    subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, check=True, timeout=120)
    assert list(home.iterdir()) == []
    assert not (tmp_path / "pyiron.log").exists()
    assert (tmp_path / "other" / "pyiron.db").exists() == (pyiron_database == "sqlite")
    with open(tmp_path / "reloaded.pkl", "rb") as handle:
        found_there, moved_there = pickle.load(handle)
    assert_same(found_there, found)
    assert_same(moved_there, moved)
    assert all(atoms.calc is not None for atoms in moved_there)
    table = job_rows(tmp_path / "proj").set_index("job")
    assert len(table) == 4  # the run under the new pipeline name reused both jobs: one row more
    there = open_project(tmp_path / "proj").load(table.index[-1])
    assert there.input.pipeline == "there"
    assert list(there.output["job_ids"]) == list(table["id"].iloc[1:3])


def test_history_of_relaxed_structure_goes_sample_to_relax(tmp_path: Path) -> None:
    recorder = ProjectRecorder(tmp_path / "proj")
    sampled, relaxed = run_pipeline(recorder)
    target = relaxed[0]
    chain = history(tmp_path / "proj", target.info[UUID])
    assert all(isinstance(link, Link) for link in chain)
    assert [link.uuid for link in chain] == [target.info[LINEAGE][0], target.info[UUID]]
    assert chain[0].uuid == target.info["seed"]
    assert chain[0].step == "pyxtal"
    assert chain[1].step == str(RELAX)
    table = job_rows(tmp_path / "proj").set_index("hamilton")
    assert [link.job_id for link in chain] == [
        table.loc["AssystSample", "id"],
        table.loc["AssystRelax", "id"],
    ]
    assert_same([chain[0].structure], [s for s in sampled if s.info[UUID] == chain[0].uuid])
    with pytest.raises(KeyError, match="no-such-uuid"):
        history(tmp_path / "proj", "no-such-uuid")


def test_queries_by_step_stage_job_and_uuid(tmp_path: Path) -> None:
    recorder = ProjectRecorder(tmp_path / "proj")
    sampled, relaxed = run_pipeline(recorder)
    path = tmp_path / "proj"
    assert_same(structures(path, step=str(RELAX)), relaxed)
    assert_same(structures(path, stage="sample"), sampled)
    assert_same(structures(path), sampled + relaxed)
    wanted = [relaxed[-1].info[UUID], sampled[0].info[UUID]]
    assert_same(structures(path, uuids=wanted), [relaxed[-1], sampled[0]])
    relax_job = job_rows(path).set_index("hamilton").loc["AssystRelax"]
    assert_same(structures(path, job=int(relax_job["id"])), relaxed)
    assert_same(structures(path, job=relax_job["job"]), relaxed)

    frame = structure_frame(path, stage="relax")
    assert list(frame.columns[:12]) == [
        "uuid",
        "seed",
        "step",
        "job_id",
        "stage",
        "formula",
        "natoms",
        "volume_per_atom",
        "energy_per_atom",
        "max_force",
        "spacegroup",
        "relax_converged",
    ]
    assert list(frame["uuid"]) == [s.info[UUID] for s in relaxed]
    assert np.allclose(
        frame["energy_per_atom"], [s.get_potential_energy() / len(s) for s in relaxed]
    )
    assert np.allclose(frame["volume_per_atom"], [s.get_volume() / len(s) for s in relaxed])
    assert set(frame["stage"]) == {"relax"}
    assert len(structure_frame(path)) == len(sampled) + len(relaxed)


def test_stale_job_of_killed_process_is_recomputed_without_duplicates(tmp_path: Path) -> None:
    marker = tmp_path / "computing"
    process = python(
        f"""
        import time
        from pathlib import Path
        from assyst_nodes.project import ProjectRecorder

        def slow():
            Path({str(marker)!r}).touch()
            time.sleep(60)
            return cubes()

        ProjectRecorder("proj").record("cubes", {{"seed": 1}}, [], slow)
        """,
        tmp_path,
        wait=False,
        header=LIGHT,
    )
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert process.poll() is None, process.communicate()[1]
            assert time.monotonic() < deadline
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    table = job_rows(tmp_path / "proj")
    assert list(table["status"]) == ["running"]
    stale_name = table["job"].iloc[0]

    light: dict[str, Any] = {}
    exec(LIGHT, light)
    recorder = ProjectRecorder(tmp_path / "proj")
    found, _ = recorder.record("cubes", {"seed": 1}, [], light["cubes"])
    table = job_rows(tmp_path / "proj")
    assert list(table["job"]) == [stale_name]
    assert list(table["status"]) == ["finished"]
    assert_same(structures(tmp_path / "proj"), found)


def test_finished_job_with_lost_output_is_recomputed_with_warning(tmp_path: Path) -> None:
    recorder = ProjectRecorder(tmp_path / "proj")
    sampled, _ = recorder.record("sample", {"seed": 1}, [], do_sample)
    (name,) = job_rows(tmp_path / "proj")["job"]
    (tmp_path / "proj" / f"{name}.h5").unlink()
    with pytest.warns(RuntimeWarning, match="computing it again"):
        again, _ = recorder.record("sample", {"seed": 1}, [], do_sample)
    assert_same(again, sampled)
    table = job_rows(tmp_path / "proj")
    assert list(table["job"]) == [name]
    assert list(table["status"]) == ["finished"]
    assert_same(structures(tmp_path / "proj"), sampled)


def test_created_job_left_over_is_recomputed(tmp_path: Path) -> None:
    recorder = ProjectRecorder(tmp_path / "proj")
    sampled, _ = do_sample()
    from assyst_nodes.project.recorder import job_name

    name = job_name("sample", {"seed": 1}, [])
    project = open_project(tmp_path / "proj")
    project.create_job(AssystSample, name).save()
    assert list(job_rows(tmp_path / "proj")["status"]) == ["created"]
    found, _ = recorder.record("sample", {"seed": 1}, [], do_sample)
    assert_same(found, sampled)
    table = job_rows(tmp_path / "proj")
    assert list(table["job"]) == [name]
    assert list(table["status"]) == ["finished"]


def test_two_processes_record_into_one_project_at_once(tmp_path: Path) -> None:
    code = """
        import pickle
        from assyst_nodes.project import ProjectRecorder
        recorder = ProjectRecorder("proj", pipeline="p{seed}")
        shared, _ = recorder.record("cubes", {{"seed": 99}}, [], lambda: cubes(99))
        made = [s.info["uuid"] for s in shared]
        for k in range(2):
            found, _ = recorder.record("cubes", {{"seed": {seed} * 10 + k}}, [],
                                       lambda: cubes({seed} * 10 + k))
            moved, _ = recorder.record("shift", {{}}, [found], lambda: shifted(found))
            made += [s.info["uuid"] for s in found + moved]
        with open("made{seed}.pkl", "wb") as handle:
            pickle.dump(made, handle)
        """
    processes = [
        python(code.format(seed=seed), tmp_path, wait=False, header=LIGHT) for seed in (1, 2)
    ]
    for process in processes:
        _, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
    table = job_rows(tmp_path / "proj")
    assert len(table) == 2 + 8 + 1  # the job both asked for is computed once
    assert set(table["status"]) == {"finished"}
    assert set(table["hamilton"]) == {"AssystPipeline", "AssystStage"}
    assert table["job"].is_unique
    made = []
    for seed in (1, 2):
        with open(tmp_path / f"made{seed}.pkl", "rb") as handle:
            made += pickle.load(handle)
    frame = structure_frame(tmp_path / "proj")
    assert sorted(frame["uuid"]) == sorted(set(made))
    moved = structures(tmp_path / "proj", step="shift")
    assert len(history(tmp_path / "proj", moved[0].info[UUID])) == 2


def test_failing_compute_leaves_aborted_job_and_others_intact(tmp_path: Path) -> None:
    recorder = ProjectRecorder(tmp_path / "proj")
    sampled, relaxed = run_pipeline(recorder)

    def broken() -> tuple[list[Atoms], StageReport]:
        raise RuntimeError("calculator exploded")

    with pytest.raises(RuntimeError, match="exploded"):
        recorder.record("relax", {"settings": VolumeRelax(max_steps=2)}, [sampled], broken)
    table = job_rows(tmp_path / "proj").set_index("status")
    assert sorted(table.index) == ["aborted", "finished", "finished"]
    assert_same(structures(tmp_path / "proj", stage="relax"), relaxed)
    assert_same(recorder.record("sample", {"seed": 1}, [], fail)[0], sampled)
    # a rerun computes the aborted job again, in place
    recorder.record(
        "relax",
        {"settings": VolumeRelax(max_steps=2)},
        [sampled],
        lambda: ([], StageReport("relax")),
    )
    assert sorted(job_rows(tmp_path / "proj")["status"]) == ["finished"] * 3


def test_switching_between_two_projects_in_one_process(
    tmp_path: Path, pyiron_database: str
) -> None:
    first = ProjectRecorder(tmp_path / "first")
    second = ProjectRecorder(tmp_path / "second")
    a, _ = first.record("sample", {"seed": 1}, [], do_sample)
    b, _ = second.record("sample", {"seed": 2}, [], lambda: do_sample(2))
    assert_same(first.record("sample", {"seed": 1}, [], fail)[0], a)
    assert_same(second.record("sample", {"seed": 2}, [], fail)[0], b)
    assert len(job_rows(tmp_path / "first")) == 1
    assert len(job_rows(tmp_path / "second")) == 1
    embedded = pyiron_database == "sqlite"  # each folder its own root, or one central database
    assert (tmp_path / "first" / "pyiron.db").exists() == embedded
    assert (tmp_path / "second" / "pyiron.db").exists() == embedded


@pytest.mark.embedded_only
def test_a_user_pyiron_config_is_used_by_default_and_embedded_when_asked(
    tmp_path: Path, isolated_home: Path
) -> None:
    central = tmp_path / "central.db"
    (isolated_home / ".pyiron").write_text(
        f"[DEFAULT]\nFILE = {central}\nPROJECT_PATHS = {tmp_path}\n"
    )
    shared = ProjectRecorder(tmp_path / "shared")
    found, _ = shared.record("sample", {"seed": 1}, [], do_sample)
    assert central.exists()
    assert not (tmp_path / "shared" / "pyiron.db").exists()
    assert_same(shared.record("sample", {"seed": 1}, [], fail)[0], found)
    local = ProjectRecorder(tmp_path / "local", use_user_config=False)
    local.record("sample", {"seed": 1}, [], do_sample)
    assert (tmp_path / "local" / "pyiron.db").exists()
    assert len(open_project(tmp_path / "local", use_user_config=False).job_table()) == 1
    assert len(open_project(tmp_path / "shared").job_table()) == 1
    assert len(open_project(tmp_path / "shared", use_user_config=True).job_table()) == 1


def test_job_names_are_deterministic_and_tell_inputs_apart(tmp_path: Path) -> None:
    from assyst_nodes.project.recorder import job_name

    sampled, _ = do_sample()
    bare = [Atoms(s.numbers, s.positions, cell=s.cell, pbc=True) for s in sampled]
    name = job_name("relax", {"settings": RELAX, "a": 1}, [sampled])
    assert name.startswith("relax_")
    assert name == job_name("relax", {"a": 1, "settings": RELAX}, [sampled])
    assert name != job_name("relax", {"settings": RELAX, "a": 2}, [sampled])
    assert name != job_name("relax", {"settings": RELAX, "a": 1}, [sampled[::-1]])
    assert job_name("relax", {}, [bare[:1]]) != job_name("relax", {}, [bare[1:2]])


def test_threads_recording_into_two_folders_do_not_mix(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    light: dict[str, Any] = {}
    exec(LIGHT, light)

    def run(folder: str, seed: int) -> list[str]:
        recorder = ProjectRecorder(tmp_path / folder, pipeline=folder)
        made = []
        for k in range(3):

            def slow(k: int = k) -> tuple[list[Atoms], StageReport]:
                time.sleep(0.05)  # let the other thread switch pyiron's state meanwhile
                return light["cubes"](seed * 10 + k)

            found, _ = recorder.record("cubes", {"seed": seed * 10 + k}, [], slow)
            made += [a.info[UUID] for a in found]
        return made

    with ThreadPoolExecutor(2) as pool:
        first, second = pool.map(run, ["first", "second"], [1, 2])
    for folder, made in (("first", first), ("second", second)):
        table = job_rows(tmp_path / folder)
        assert len(table) == 4
        assert set(table["status"]) == {"finished"}
        assert sorted(structure_frame(tmp_path / folder)["uuid"]) == sorted(made)


def test_bad_project_folder_raises_naming_the_path(tmp_path: Path) -> None:
    file = tmp_path / "a_file"
    file.write_text("")
    with pytest.raises(ValueError, match="a_file"):
        open_project(file)
    with pytest.raises(ValueError, match="a_file"):
        open_project(file / "proj")

    def denied(*args: object, **kwargs: object) -> None:
        raise PermissionError(errno.EACCES, "Permission denied")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(tempfile, "TemporaryFile", denied)
        with pytest.raises(PermissionError, match="read_only_proj"):
            open_project(tmp_path / "read_only_proj")


def test_read_only_folder_raises_permission_error(tmp_path: Path) -> None:
    """Folders nobody may write, root included (root ignores a folder's mode, and the tests
    run as root in CI): ``/sys`` (sysfs makes no folder for anyone: EPERM for root, EACCES for
    others, EROFS where it is mounted read-only), a folder of mode 0o500 for any other user,
    and for root a read-only tmpfs mounted on it where mounting is permitted (EROFS)."""
    sysfs = Path("/sys") / f"assyst_test_{os.getpid()}"
    assert not sysfs.exists()
    with pytest.raises(PermissionError, match=sysfs.name):
        open_project(sysfs / "proj")
    assert not sysfs.exists()

    locked = tmp_path / "locked"
    locked.mkdir()
    mounted = False
    if os.geteuid() == 0:  # a real read-only file system, if this root may mount one
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(locked)],
            capture_output=True,
            text=True,
            check=False,
        )
        mounted = done.returncode == 0
    else:
        locked.chmod(0o500)
    try:
        if mounted or os.geteuid() != 0:
            with pytest.raises(PermissionError, match="locked"):
                open_project(locked / "proj")
            assert not (locked / "proj").exists()
    finally:
        if mounted:
            subprocess.run(["umount", str(locked)], check=True)
        locked.chmod(0o700)


def test_export_extxyz_round_trips_through_ase_read(tmp_path: Path) -> None:
    sampled, relaxed = run_pipeline(ProjectRecorder(tmp_path / "proj"))
    path = export_extxyz(structures(tmp_path / "proj"), tmp_path / "all.extxyz")
    back = ase.io.read(path, index=":")
    assert [a.info[UUID] for a in back] == [a.info[UUID] for a in sampled + relaxed]
    assert [a.info["seed"] for a in back] == [a.info["seed"] for a in sampled + relaxed]
    assert all(LINEAGE not in a.info for a in back[: len(sampled)])
    path = export_extxyz(structures(tmp_path / "proj", stage="relax"), tmp_path / "set.extxyz")
    back = ase.io.read(path, index=":")
    assert len(back) == len(relaxed)
    for original, read in zip(relaxed, back, strict=True):
        assert np.allclose(read.positions, original.positions)
        assert np.allclose(read.cell.array, original.cell.array)
        assert read.get_potential_energy() == pytest.approx(original.get_potential_energy())
        assert np.allclose(read.get_forces(), original.get_forces())
        assert np.allclose(read.get_stress(), original.get_stress())
        assert read.info[UUID] == original.info[UUID]
        assert str(read.info[LINEAGE]).split() == list(original.info[LINEAGE])


def test_export_table_writes_pickle_and_parquet(tmp_path: Path) -> None:
    sampled, relaxed = run_pipeline(ProjectRecorder(tmp_path / "proj"))
    frame = pd.read_pickle(export_table(tmp_path / "proj", tmp_path / "table.pkl"))
    assert list(frame["uuid"]) == [s.info[UUID] for s in sampled + relaxed]
    frame = pd.read_pickle(export_table(relaxed, tmp_path / "relaxed.pkl"))
    assert list(frame["uuid"]) == [s.info[UUID] for s in relaxed]
    back = pd.read_parquet(export_table(relaxed, tmp_path / "relaxed.parquet"))  # test extra
    assert list(back["uuid"]) == [s.info[UUID] for s in relaxed]
    pd.testing.assert_frame_equal(
        back, pd.read_pickle(tmp_path / "relaxed.pkl"), check_dtype=False,
        check_column_type=False,
    )


def test_export_table_without_pyarrow_names_it_and_the_pickle_instead(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "pyarrow" else real(name, *a)
    )
    with pytest.raises(ImportError, match=r"needs pyarrow.*\.pkl"):
        export_table([bulk("Cu")], tmp_path / "table.parquet")
    assert not (tmp_path / "table.parquet").exists()
