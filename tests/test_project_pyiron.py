"""The project layer as a citizen of the user's pyiron Project: one database (embedded SQLite or
the user's PostgreSQL), sub-projects, pyiron's remove/copy/move/pack tools, stage jobs that are
real pyiron jobs (create.job, run, accessors, status, chemical formula)."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from ase import Atoms
from ase.build import bulk
from stand_ins import cubes as cube_cells
from stand_ins import shifted

from assyst_nodes.calculators import EMT
from assyst_nodes.lineage import UUID, update_uuid
from assyst_nodes.nodes import stages
from assyst_nodes.project import (
    AssystSample,
    ProjectRecorder,
    export_table,
    history,
    open_project,
    rerun,
    structure_frame,
    structures,
)
from assyst_nodes.project.binding import BoundProject
from assyst_nodes.project.index import Index
from assyst_nodes.reports import StageReport
from assyst_nodes.stages.filter import DistanceFilter
from assyst_nodes.stages.perturb import Rattle
from assyst_nodes.stages.relax import VolumeRelax
from assyst_nodes.stages.sample import Formulas

pytestmark = pytest.mark.usefixtures("pyiron_database")  # SQLite and PostgreSQL

RELAX = VolumeRelax(max_steps=5, calculator=EMT())
FORMULAS = Formulas.range(("Cu",), 1, 3)
SAMPLE = {"formulas": FORMULAS, "spacegroups": [221, 225, 229], "max_atoms": 2, "seed": 1}


def cubes(seed: int = 1) -> tuple[list[Atoms], StageReport]:
    """Four fcc Cu cells with uuids (a cheap stand-in for sampling)."""
    return cube_cells(seed, n=4)


def record_chain(target: Any, seed: int = 1, pipeline: str | None = None) -> list[Atoms]:
    """sample -> relax with the real stage nodes (a few Cu crystals, five EMT steps) into
    ``target`` (a folder or a pyiron Project); the relaxed structures."""
    recorder = ProjectRecorder(target, pipeline=pipeline)
    sampled, _ = stages.sample(**{**SAMPLE, "seed": seed}, recorder=recorder)
    relaxed, _ = stages.relax(sampled, RELAX, recorder=recorder)
    return relaxed


def ids_in_table(project: Any) -> set[int]:
    return {int(i) for i in project.job_table(recursive=True)["id"]}


def tree_digest(folder: Path) -> dict[str, str]:
    """sha256 of every file below ``folder`` (relative paths)."""
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def uuids_once(frame: pd.DataFrame) -> None:
    assert frame["uuid"].is_unique, frame["uuid"][frame["uuid"].duplicated()].tolist()


# ----------------------------------------------------------------------------------------------
# one database: a pyiron Project (any group) or a path; sub-projects share their root's database


def test_a_recorder_takes_a_group_of_the_users_project_and_the_root_sees_every_job(
    tmp_path: Path, pyiron_database: str
) -> None:
    pr = open_project(tmp_path / "study")
    assert isinstance(pr, BoundProject)
    cu_ag, al_ni = pr.create_group("CuAg"), pr.create_group("AlNi")
    relaxed_cu = record_chain(cu_ag, seed=1, pipeline="cu")
    relaxed_al = record_chain(al_ni, seed=2)
    # one database: the groups have none of their own
    assert not (tmp_path / "study" / "CuAg" / "pyiron.db").exists()
    assert (tmp_path / "study" / "pyiron.db").exists() == (pyiron_database == "sqlite")
    table = pr.job_table(recursive=True)
    stage_rows = table[table["hamilton"].isin(["AssystSample", "AssystRelax"])]
    assert len(stage_rows) == 4
    assert set(stage_rows["project"].str.rstrip("/").str.rsplit("/", n=1).str[-1]) == {
        "CuAg",
        "AlNi",
    }
    assert pr.job_table(recursive=False).empty
    frame = structure_frame(pr)
    uuids_once(frame)
    made = {a.info[UUID] for a in relaxed_cu + relaxed_al}
    assert made <= set(frame["uuid"])
    assert structure_frame(pr, recursive=False).empty
    assert set(structure_frame(cu_ag, stage="relax")["uuid"]) == {a.info[UUID] for a in relaxed_cu}
    assert set(structure_frame(tmp_path / "study" / "AlNi", stage="relax")["uuid"]) == {
        a.info[UUID] for a in relaxed_al
    }
    chain = history(pr, relaxed_cu[0].info[UUID])
    assert [link.step for link in chain] == ["pyxtal", str(RELAX)]
    assert {link.job_id for link in chain} <= ids_in_table(pr)
    assert len(structures(pr, stage="relax")) == len(made)
    out = export_table(pr, tmp_path / "all.pkl")
    assert len(pd.read_pickle(out)) == len(frame)
    assert len(pd.read_pickle(export_table(cu_ag, tmp_path / "cu.pkl", recursive=False))) == (
        len(structure_frame(cu_ag))
    )


def test_a_plain_pyiron_project_of_the_users_configuration_sees_the_jobs(
    tmp_path: Path, pyiron_database: str
) -> None:
    """With a pyiron configuration (here: a SQLite file, or the PostgreSQL server), the jobs go
    to the configured database: a plain pyiron_base.Project in a fresh process lists them."""
    env = dict(os.environ, HOME=str(tmp_path / "home"))
    if pyiron_database == "sqlite":
        env |= {"PYIRONSQLFILE": str(tmp_path / "central.db"), "PYIRONSQLTYPE": "SQLite"}
    record = f"""
        from assyst_nodes.project import ProjectRecorder, open_project
        from assyst_nodes.stages.sample import Formulas
        from assyst_nodes.nodes import stages
        recorder = ProjectRecorder({str(tmp_path / "proj")!r}, pipeline="run")
        stages.sample(Formulas.range(("Cu",), 1, 2), spacegroups=[225], max_atoms=1,
                      recorder=recorder)
        assert open_project({str(tmp_path / "proj")!r}).database_kind == "user"
    """
    subprocess.run([sys.executable, "-c", textwrap.dedent(record)], env=env, check=True)
    look = f"""
        import pyiron_base
        table = pyiron_base.Project({str(tmp_path / "proj")!r}).job_table()
        print(sorted(table["hamilton"]))
    """
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(look)], env=env, check=True, capture_output=True,
        text=True,
    )
    assert done.stdout.strip() == "['AssystPipeline', 'AssystSample']"
    assert not (tmp_path / "proj" / "pyiron.db").exists()
    assert list((tmp_path / "home").iterdir()) == []


def test_importing_the_layer_works_with_a_pyiron_configuration_from_environment_variables(
    tmp_path: Path, pyiron_database: str
) -> None:
    """PYIRONPROJECTPATHS and friends set: the import must not switch pyiron's database off."""
    env = dict(os.environ, HOME=str(tmp_path / "home"), PYIRONPROJECTPATHS=str(tmp_path))
    if pyiron_database == "sqlite":
        env |= {"PYIRONSQLFILE": str(tmp_path / "central.db"), "PYIRONSQLTYPE": "SQLite"}
    code = f"""
        from assyst_nodes.project import ProjectRecorder, open_project
        pr = open_project({str(tmp_path / "proj")!r})
        assert pr.database_kind == "user" and pr.root_path.rstrip("/") == {str(tmp_path)!r}
        ProjectRecorder(pr).record("cubes", {{}}, [], lambda: ([], __import__(
            "assyst_nodes.reports").reports.StageReport("cubes")))
        print(len(pr.job_table()))
    """
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], env=env, check=True, capture_output=True,
        text=True,
    )
    assert done.stdout.strip() == "1"


@pytest.mark.embedded_only
def test_without_configuration_nothing_is_written_home_and_two_roots_stay_apart(
    tmp_path: Path, isolated_home: Path
) -> None:
    first, second = open_project(tmp_path / "first"), open_project(tmp_path / "second")
    ProjectRecorder(first).record("cubes", {"seed": 1}, [], cubes)
    ProjectRecorder(second).record("cubes", {"seed": 2}, [], lambda: cubes(2))
    ProjectRecorder(second).record("cubes", {"seed": 3}, [], lambda: cubes(3))
    # the object of the first root still talks to its own database after the second was used
    assert len(first.job_table()) == 1 and len(second.job_table()) == 2
    assert first.load(first.job_table()["job"].iloc[0]).output.n_structures == 4
    assert len(first.create_group("sub").parent_group.job_table()) == 1
    assert len(second.job_table()) == 2
    assert list(isolated_home.iterdir()) == []
    # a plain pyiron Project of a folder of the first root (the import made no ~/pyiron.db)
    import pyiron_base

    plain = pyiron_base.Project(str(tmp_path / "first"))
    assert len(open_project(plain).job_table()) == 1
    assert list(isolated_home.iterdir()) == []


# ----------------------------------------------------------------------------------------------
# pyiron's own tools keep what the package keeps beside the job table consistent


@pytest.mark.parametrize("how", ["remove_job", "job.remove", "remove_jobs", "raw row delete"])
def test_removing_a_job_with_pyirons_tools_leaves_consistent_queries(
    tmp_path: Path, how: str
) -> None:
    pr = open_project(tmp_path / "proj")
    recorder = ProjectRecorder(pr)
    made, _ = recorder.record("cubes", {"seed": 1}, [], cubes)
    moved, _ = recorder.record("shift", {}, [made], lambda: shifted(made))
    assert len(structure_frame(pr)) == 8
    shift_name = pr.job_table()["job"].iloc[-1]
    shift_id = int(pr.get_job_id(shift_name))
    if how == "remove_job":
        pr.remove_job(shift_name)
    elif how == "job.remove":
        pr.load(shift_name).remove()
    elif how == "remove_jobs":
        pr.remove_jobs(recursive=True, silently=True, progress=False)
    else:  # behind pyiron's back too: the index is checked against the table on every query
        pr.db.delete_item(shift_id)
    frame = structure_frame(pr)  # no DamagedJobError, no rows of the removed job
    assert shift_id not in set(frame["job_id"])
    assert all(int(i) in ids_in_table(pr) for i in frame["job_id"])
    assert len(frame) == (0 if how == "remove_jobs" else 4)
    if how != "remove_jobs":
        assert history(pr, made[0].info[UUID])[-1].job_id in ids_in_table(pr)
    with pytest.raises(KeyError):
        history(pr, moved[0].info[UUID])
    # a rerun computes what is missing, and the queries never give a uuid twice
    again, _ = recorder.record("cubes", {"seed": 1}, [], cubes)
    recorder.record("shift", {}, [again], lambda: shifted(again))
    frame = structure_frame(pr)
    uuids_once(frame)
    assert len(frame) == 8
    assert set(frame["job_id"]) <= ids_in_table(pr)
    assert [link.job_id for link in history(pr, moved[0].info[UUID])] == sorted(
        ids_in_table(pr)
    )
    if how != "raw row delete":
        assert shift_id not in Index(tmp_path / "proj").jobs() or shift_id in ids_in_table(pr)


def test_removing_a_whole_group_keeps_the_root_consistent(tmp_path: Path) -> None:
    pr = open_project(tmp_path / "study")
    record_chain(pr.create_group("a"), seed=1)
    kept = record_chain(pr.create_group("b"), seed=2)
    pr.create_group("a").remove(enable=True)
    assert not (tmp_path / "study" / "a").exists()
    frame = structure_frame(pr)
    uuids_once(frame)
    assert set(frame["job_id"]) <= ids_in_table(pr)
    assert {a.info[UUID] for a in kept} <= set(frame["uuid"])
    assert len(pr.job_table(recursive=True)) == 2


@pytest.mark.embedded_only
def test_a_copied_project_folder_works_on_its_own_and_never_touches_the_original(
    tmp_path: Path,
) -> None:
    original = tmp_path / "proj"
    relaxed = record_chain(original, pipeline="first")
    before = tree_digest(original)
    shutil.copytree(original, tmp_path / "copy")  # cp -r, WAL files and index included
    copy = open_project(tmp_path / "copy")
    table = copy.job_table()
    assert set(table["project"]) == {"copy/"}
    relax_job = copy.load(table["job"].iloc[-1])
    assert [a.info[UUID] for a in relax_job.output.structures] == [a.info[UUID] for a in relaxed]
    assert relax_job.h5_file.parent == (tmp_path / "copy").resolve()
    assert len(structure_frame(copy)) == len(structure_frame(tmp_path / "copy"))
    record_chain(copy, seed=7)  # new jobs in the copy
    copy.remove_jobs(recursive=True, silently=True, progress=False)
    assert copy.job_table().empty and structure_frame(copy).empty
    assert tree_digest(original) == before  # byte-identical
    back = open_project(original)
    assert len(back.job_table()) == 3
    relax_job = back.load(back.job_table()["job"].iloc[-1])
    assert [a.info[UUID] for a in relax_job.output.structures] == [a.info[UUID] for a in relaxed]


@pytest.mark.embedded_only
def test_a_moved_project_folder_loads_reruns_and_is_queried_where_it_is_now(
    tmp_path: Path,
) -> None:
    relaxed = record_chain(tmp_path / "proj")
    relax_name = open_project(tmp_path / "proj").job_table()["job"].iloc[-1]
    (tmp_path / "proj").rename(tmp_path / "moved")
    pr = open_project(tmp_path / "moved")
    job = pr.load(2)
    assert job.status == "finished" and len(job.output.structures) == len(relaxed)
    again, report = rerun(pr, relax_name, force=True)
    assert [a.info[UUID] for a in again] == [a.info[UUID] for a in relaxed]
    assert report is not None and report.n_out == len(relaxed)
    assert set(pr.job_table()["project"]) == {"moved/"}
    assert set(structure_frame(pr, stage="relax")["uuid"]) == {a.info[UUID] for a in relaxed}


def test_pack_and_unpack_carry_the_jobs_and_their_structures(tmp_path: Path) -> None:
    pr = open_project(tmp_path / "proj")
    relaxed = record_chain(pr, pipeline="packed")
    expected = structure_frame(pr)
    os.chdir(tmp_path)
    pr.pack(destination_path=str(tmp_path / "archive"))
    target = open_project(tmp_path / "unpacked")
    target.unpack(origin_path=str(tmp_path / "archive.tar.gz"))
    table = target.job_table(recursive=True)
    assert sorted(table["hamilton"]) == ["AssystPipeline", "AssystRelax", "AssystSample"]
    frame = structure_frame(target)
    assert sorted(frame["uuid"]) == sorted(expected["uuid"])
    assert set(frame["job_id"]) <= ids_in_table(target)
    chain = history(target, relaxed[0].info[UUID])
    assert [link.step for link in chain] == ["pyxtal", str(RELAX)]
    relax_job = target.load(int(table.loc[table["hamilton"] == "AssystRelax", "id"].iloc[0]))
    assert relax_job.parent_id == int(table.loc[table["hamilton"] == "AssystSample", "id"].iloc[0])
    assert [a.info[UUID] for a in relax_job.output.structures] == [a.info[UUID] for a in relaxed]


# ----------------------------------------------------------------------------------------------
# stage jobs are real pyiron jobs


def test_stage_jobs_are_created_set_up_and_run_the_pyiron_way(tmp_path: Path) -> None:
    pr = open_project(tmp_path / "proj")
    sample = pr.create.job.AssystSample("crystals")
    assert isinstance(sample, AssystSample)
    for key, value in SAMPLE.items():
        setattr(sample.input, key, value)
    with pytest.raises(AttributeError, match="formulas"):  # names the valid ones
        sample.input.formula = FORMULAS
    sample.run()
    assert sample.status == "finished"
    relax = pr.create.job.AssystRelax("relaxed")
    relax.input.settings = RELAX
    relax.input.structures = sample  # or its id or name
    relax.server.cores = 2
    relax.run()
    assert relax.status == "finished" and relax.parent_id == sample.job_id
    perturb = pr.create.job.AssystPerturb("rattled")
    perturb.input.perturbations = [Rattle(0.05)]
    perturb.input.structures = "relaxed"
    perturb.run()
    filtered = pr.create.job.AssystFilter("kept")
    filtered.input.filters = DistanceFilter({"Cu": 1.0})
    filtered.input.structures = perturb.job_id
    filtered.run()
    combined = pr.create.job.AssystCombine("all")
    combined.input.structures = [sample, relax, filtered]
    combined.run()
    label = pr.create.job.AssystLabel("labelled")
    label.input.calculator = EMT()
    label.input.structures = combined
    label.run()
    # the same results as the stage nodes give, run directly
    direct, _ = stages.sample(**SAMPLE)
    direct_relaxed, _ = stages.relax(direct, RELAX)
    assert [a.info[UUID] for a in relax.output.structures] == [a.info[UUID] for a in direct_relaxed]
    table = pr.job_table().set_index("job")
    assert set(table["status"]) == {"finished"}
    assert set(table["chemicalformula"]) == {"Cu"}  # one empirical formula applies
    assert table.loc["all", "parentid"] == sample.job_id
    n = len(combined.output.structures)
    assert n == len(sample.output.structures) + len(relax.output.structures) + len(
        filtered.output.structures
    )
    loaded = pr.load("labelled")
    isolated = [a for a in loaded.output.structures if a.info["config_type"] == "IsolatedAtom"]
    stood_for = sum(1 + len(a.info.get("duplicates", [])) for a in loaded.output.structures
                    if a not in isolated)  # fmt: skip
    assert stood_for == n and len(isolated) == 1  # every structure labelled once, and Cu alone
    assert loaded.output.n_structures == n - loaded.output.report.dropped.get("duplicate", 0) + 1
    assert all(np.isfinite(a.get_potential_energy()) for a in loaded.output.structures)
    # pyiron's accessors read what is stored
    positions = np.concatenate([a.positions for a in relax.output.structures])
    assert np.array_equal(pr.load("relaxed").content["output/structures/positions"], positions)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # pyiron prefers job.content
        assert pr.load("relaxed")["output/structures/positions"].shape == positions.shape
        assert pr.load("relaxed")["input/stage"] == "relax"
    assert "VolumeRelax" in pr.load("relaxed").content["input/settings"]
    assert pr.load("relaxed").input.settings == RELAX
    assert pr.load("kept").content["output/n_structures"] == len(filtered.output.structures)
    output = pr.load("relaxed").content.output  # browsable as any pyiron job's
    assert output.list_groups() == ["structures"] and "n_structures" in output.list_nodes()


def test_a_stage_job_given_structures_keeps_them_and_runs_again(tmp_path: Path) -> None:
    pr = open_project(tmp_path / "proj")
    cells = [update_uuid(bulk("Cu", a=3.6 + 0.05 * k), "fixture", str(k)) for k in range(3)]
    job = pr.create.job.AssystRelax("given")
    job.input.settings = RELAX
    job.input.structures = cells
    job.run()
    first = [a.get_potential_energy() for a in job.output.structures]
    loaded = pr.load("given")
    assert [a.info[UUID] for a in loaded.input_structures()[0]] == [a.info[UUID] for a in cells]
    loaded.run(delete_existing_job=True)  # pyiron's rerun: the stored input survives
    again = pr.load("given")
    assert again.status == "finished"
    assert [a.get_potential_energy() for a in again.output.structures] == first
    copied = again.copy_to(new_job_name="given_copy")
    assert pr.load("given_copy").output.n_structures == 3
    assert [a.info[UUID] for a in pr.load("given_copy").output.structures] == [
        a.info[UUID] for a in again.output.structures
    ]
    assert copied.job_id != again.job_id
    frame = structure_frame(pr)  # the copy holds the same uuids: each once
    uuids_once(frame)


def test_bad_stage_job_input_fails_before_anything_is_stored(tmp_path: Path) -> None:
    pr = open_project(tmp_path / "proj")
    relax = pr.create.job.AssystRelax("no_input")
    with pytest.raises(ValueError, match=r"input\.structures"):
        relax.run()
    sample = pr.create.job.AssystSample("no_formulas")
    with pytest.raises(ValueError, match="formulas"):
        sample.run()
    with pytest.raises(TypeError, match=r"stage job, its id or name, or a list of ase\.Atoms"):
        relax.input.structures = 3.5
    with pytest.raises(ValueError, match="no job named 'missing'"):
        relax.input.structures = "missing"
    assert pr.job_table().empty or set(pr.job_table()["status"]) <= {"aborted"}


def test_a_stage_job_runs_in_the_background_with_pyirons_non_modal_mode(tmp_path: Path) -> None:
    pr = open_project(tmp_path / "proj")
    job = pr.create.job.AssystSample("background")
    for key, value in SAMPLE.items():
        setattr(job.input, key, value)
    job.server.run_mode.non_modal = True
    job.run()
    deadline = time.monotonic() + 120
    while pr.get_job_status("background") != "finished" and time.monotonic() < deadline:
        time.sleep(0.2)
    assert pr.get_job_status("background") == "finished"
    assert pr.load("background").output.n_structures == len(stages.sample(**SAMPLE)[0])


def test_a_pipeline_job_runs_the_whole_macro_and_lists_its_stage_jobs(
    tmp_path: Path,
) -> None:
    pr = open_project(tmp_path / "proj")
    job = pr.create.job.AssystPipeline("cu_ag")
    job.input.max_atoms = 2
    job.input.spacegroups = [1, 2, 221, 225]
    job.input.max_structures = 3
    job.input.volume_relax = VolumeRelax(max_steps=5)
    job.input.seed = 4
    job.run()
    assert job.status == "finished"
    table = pr.job_table()
    stage_rows = table[table["hamilton"] != "AssystPipeline"]
    assert set(stage_rows["hamilton"]) == {
        "AssystSample", "AssystRelax", "AssystPerturb", "AssystCombine", "AssystFilter"
    }
    assert stage_rows["masterid"].isna().all()  # listed by the pipeline, not its pyiron children
    loaded = pr.load("cu_ag")
    assert sorted(loaded.output["jobs"]) == sorted(stage_rows["job"])
    assert sorted(int(i) for i in loaded.output["job_ids"]) == sorted(stage_rows["id"])
    assert not structure_frame(pr, stage="filter").empty


# ----------------------------------------------------------------------------------------------
# the job table tells what happened


def fe_cells() -> list[Atoms]:
    return [update_uuid(bulk("Fe", a=2.87 + 0.01 * k), "fixture", str(k)) for k in range(2)]


def test_a_stage_that_lost_structures_to_errors_is_visible_in_the_job_table(
    tmp_path: Path,
) -> None:
    pr = open_project(tmp_path / "proj")
    recorder = ProjectRecorder(pr)
    fe = fe_cells()  # EMT has no Fe: every relaxation fails
    cu = [update_uuid(bulk("Cu", a=3.6), "fixture", "cu")]
    lost, report = stages.relax(fe, RELAX, recorder=recorder)
    assert lost == [] and report.n_lost == 2
    partly, _ = stages.relax(fe + cu, RELAX, recorder=recorder)
    assert len(partly) == 1
    table = pr.job_table().set_index("id")
    assert list(table["status"]) == ["aborted", "warning"]
    assert list(table["chemicalformula"]) == ["Fe", "Cu"]  # the output's; the input's if none
    warned = pr.load(int(table.index[1]))
    assert warned.output.n_lost == 2 and warned.output.report.dropped == {"calculator_error": 2}
    # a rerun reuses the job with a warning and computes the aborted one again
    stages.relax(fe + cu, RELAX, recorder=recorder)
    assert list(pr.job_table()["status"]) == ["aborted", "warning"]


def test_every_pipeline_run_leaves_its_row_even_when_it_reuses_every_job(tmp_path: Path) -> None:
    pr = open_project(tmp_path / "proj")
    record_chain(pr, pipeline="first")
    record_chain(pr, pipeline="second")  # all reused
    table = pr.job_table().set_index("job")
    pipelines = table[table["hamilton"] == "AssystPipeline"]
    assert len(pipelines) == 2
    stage_ids = sorted(int(i) for i in table.loc[table["hamilton"] != "AssystPipeline", "id"])
    for name in pipelines.index:
        assert sorted(int(i) for i in pr.load(name).output["job_ids"]) == stage_ids
    assert table["masterid"].isna().all()  # shared by both: no stage job is a pyiron child


# ----------------------------------------------------------------------------------------------
# pyiron's queue adapter submits a stage job to SLURM like any pyiron job


def test_a_stage_job_is_submitted_to_slurm_through_pyirons_queue_adapter(
    tmp_path: Path, pyiron_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The user's pyiron configuration names the queue (a pysqa ``queue.yaml`` in a resource
    path), as at any pyiron site; ``job.server.queue`` submits the stage job with ``sbatch``
    and the SLURM job runs it from the job table."""
    from services import require_slurm, write_pysqa_config

    partition = require_slurm()
    write_pysqa_config(tmp_path / "resources", partition)
    monkeypatch.setenv("PYIRONRESOURCEPATHS", str(tmp_path / "resources"))
    if pyiron_database == "sqlite":
        monkeypatch.setenv("PYIRONSQLFILE", str(tmp_path / "central.db"))
    # the SLURM job runs `python -m pyiron_base.cli wrapper ...`: this environment's python
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    pr = open_project(tmp_path / "proj")
    assert pr.database_kind == "user"
    sample = pr.create.job.AssystSample("crystals")
    for key, value in SAMPLE.items():
        setattr(sample.input, key, value)
    sample.run()
    job = pr.create.job.AssystRelax("on_slurm")
    job.input.settings = RELAX
    job.input.structures = sample
    job.server.queue = partition
    job.server.cores = 2
    job.run()
    assert job.server.queue_id is not None
    deadline = time.monotonic() + 180
    while pr.get_job_status("on_slurm") not in ("finished", "aborted", "warning"):
        assert time.monotonic() < deadline, pr.job_table()
        time.sleep(0.5)
    done = pr.load("on_slurm")
    assert done.status == "finished", (tmp_path / "proj").glob("on_slurm_hdf5/**/time.out")
    direct, _ = stages.relax(sample.output.structures, RELAX)
    assert [a.info[UUID] for a in done.output.structures] == [a.info[UUID] for a in direct]
    assert [a.get_potential_energy() for a in done.output.structures] == [
        a.get_potential_energy() for a in direct
    ]
    assert int(done.server.queue_id) == int(job.server.queue_id)
