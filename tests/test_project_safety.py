"""What a pyiron user does with pyiron's own tools never loses or corrupts data: each test is one
defect found by trying them (pipeline removal, a changed environment, unpack into a project that
has jobs, the job table in the WAL file, pack/unpack from elsewhere, copy_to into a group, the
exit delay with PostgreSQL, pipeline status, parents, what is written home)."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import h5py
import pyiron_workflow as pwf
import pytest
from ase import Atoms
from stand_ins import cubes, shifted

from assyst_nodes import nodes
from assyst_nodes.calculators import EMT
from assyst_nodes.lineage import UUID
from assyst_nodes.nodes import stages
from assyst_nodes.project import (
    ForeignJobError,
    InputChangedError,
    ProjectRecorder,
    history,
    open_project,
    remove_pipeline,
    rerun,
    structure_frame,
    structures,
)
from assyst_nodes.project.database import DB_FILE
from assyst_nodes.stages.relax import VolumeRelax
from assyst_nodes.stages.sample import Formulas

pytestmark = pytest.mark.usefixtures("pyiron_database")  # SQLite and PostgreSQL

TINY = {
    "elements": ["Cu"],
    "max_atoms": 2,
    "spacegroups": [221, 225, 229],
    "max_structures": 3,
    "volume_relax": VolumeRelax(max_steps=5),
    "seed": 4,
    "workers": 1,
    "progress": False,
}
RELAX = VolumeRelax(max_steps=5, calculator=EMT())
SAMPLE = {
    "formulas": Formulas.range(("Cu",), 1, 3),
    "spacegroups": [221, 225, 229],
    "max_atoms": 2,
    "seed": 1,
}


def chain(target: Any, seed: int = 1, pipeline: str | None = None) -> tuple[list[Atoms], ...]:
    """sample -> relax with the real stage nodes into ``target``: both outputs."""
    recorder = ProjectRecorder(target, pipeline=pipeline)
    sampled, _ = stages.sample(**{**SAMPLE, "seed": seed}, recorder=recorder)
    relaxed, _ = stages.relax(sampled, RELAX, recorder=recorder)
    return sampled, relaxed


def uuids(found: list[Atoms]) -> list[str]:
    return [str(a.info[UUID]) for a in found]


def rows(project: Any) -> dict[str, dict[str, Any]]:
    """Job name -> job-table row of every job of ``project``'s folder (and below)."""
    found = project.db.get_items_dict({"project": project.project_path + "%"})
    return {str(r["job"]): r for r in found}


def tree(folder: Path) -> dict[str, bytes]:
    """Every file below ``folder`` with its bytes."""
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    return {str(p.relative_to(folder)): p.read_bytes() for p in files}


# ----------------------------------------------------------------------------------------------
# 1. a pipeline job owns no stage job


def test_removing_a_pipeline_keeps_the_stage_jobs_another_pipeline_uses(tmp_path: Path) -> None:
    """The reported sequence: the macro twice under two pipeline names (everything reused), then
    pyiron's remove_job of the first pipeline job."""
    pr = open_project(tmp_path / "c")
    first = pwf.run(nodes.assyst, **TINY, recorder=ProjectRecorder(pr, pipeline="v1")).outputs
    pwf.run(nodes.assyst, **TINY, recorder=ProjectRecorder(pr, pipeline="v1-again"))
    table = pr.job_table()
    assert len(table) == 9
    pipelines = table[table["hamilton"] == "AssystPipeline"].set_index("job")
    v1, again = pipelines.index  # made in this order
    pr.remove_job(int(pipelines.loc[v1, "id"]))
    table = pr.job_table()
    assert len(table) == 8 and v1 not in set(table["job"])
    frame = structure_frame(pr, stage="filter")
    assert sorted(frame["uuid"]) == sorted(uuids(first.training_set))
    listed = pr.load(again).output
    assert listed["missing"] == [] and len(listed["job_ids"]) == 7
    assert set(listed["job_ids"]) == set(table.loc[table["hamilton"] != "AssystPipeline", "id"])
    assert pr.get_job_status(again) == "finished"


def test_a_removed_stage_job_leaves_its_pipelines_visibly_incomplete_until_rerun(
    tmp_path: Path,
) -> None:
    pr = open_project(tmp_path / "c")
    chain(pr, pipeline="one")
    chain(pr, pipeline="two")
    table = pr.job_table().set_index("job")
    relax = str(table.index[table["hamilton"] == "AssystRelax"][0])
    pr.remove_job(relax)
    for pipeline in table.index[table["hamilton"] == "AssystPipeline"]:
        assert pr.get_job_status(pipeline) == "aborted"  # the job table shows it at once
        output = pr.load(pipeline).output
        assert output["missing"] == [relax] and output["status"] == "aborted"
        assert relax not in {str(r["job"]) for r in rows(pr).values()}
    chain(pr, pipeline="one")  # computes the relax job again, under its name
    assert pr.get_job_status(relax) == "finished"
    assert pr.load(table.index[0]).output["missing"] == []
    assert pr.get_job_status(str(table.index[0])) == "finished"


def test_remove_pipeline_with_its_stage_jobs_keeps_those_another_pipeline_lists(
    tmp_path: Path,
) -> None:
    pr = open_project(tmp_path / "c")
    chain(pr, seed=1, pipeline="one")
    chain(pr, seed=1, pipeline="two")  # the same jobs
    chain(pr, seed=2, pipeline="two")  # and two more, only "two" lists them
    before = set(pr.job_table()["job"])
    two = pr.load(next(n for n in before if n.startswith("pipeline_two")))
    only_two = set(two.output["jobs"]) - set(pr.load(next(
        n for n in before if n.startswith("pipeline_one"))).output["jobs"])
    assert len(only_two) == 2
    removed = remove_pipeline(pr, "two", with_stage_jobs=True)
    assert set(removed) == only_two | {two.job_name}
    assert set(pr.job_table()["job"]) == before - set(removed)
    with pytest.raises(KeyError, match="no pipeline job"):
        remove_pipeline(pr, "two")
    assert remove_pipeline(pr, "one") == [n for n in before if n.startswith("pipeline_one")]
    assert len(pr.job_table()) == 2  # pyiron's way: the stage jobs stay


def test_stage_jobs_an_older_version_made_children_of_their_pipeline_are_set_free(
    tmp_path: Path,
) -> None:
    """Versions before 0.3 gave stage jobs their pipeline as ``masterid``: pyiron removed them
    with it. Opened with this version (a new process), they are nobody's children."""
    pr = open_project(tmp_path / "old")
    chain(pr, pipeline="p")
    table = pr.job_table().set_index("job")
    pipeline_id = int(table.loc[table["hamilton"] == "AssystPipeline", "id"].iloc[0])
    for job_id in table.loc[table["hamilton"] != "AssystPipeline", "id"]:
        pr.db.item_update({"masterid": pipeline_id}, int(job_id))  # as the old version did
    code = f"""
        from assyst_nodes.project import open_project, structure_frame
        pr = open_project({str(tmp_path / "old")!r})
        pr.remove_job({pipeline_id})
        print(len(pr.job_table()), len(structure_frame(pr)))
    """
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
        timeout=300, check=True,
    )
    assert done.stdout.split() == ["2", str(len(structure_frame(pr)))]
    assert pr.job_table()["masterid"].isna().all()


def test_remove_jobs_removes_everything_without_warnings(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    pr = open_project(tmp_path / "c")
    chain(pr, pipeline="one")
    chain(pr, seed=2, pipeline="two")
    with caplog.at_level(logging.WARNING):
        pr.remove_jobs(recursive=True, silently=True, progress=False)
    assert pr.job_table().empty and structure_frame(pr).empty
    assert not [r for r in caplog.records if "Could not remove" in r.getMessage()]


# ----------------------------------------------------------------------------------------------
# 2. a project keeps its database


@pytest.mark.embedded_only
@pytest.mark.parametrize(
    "change",
    [
        {"PYIRONCONNECTIONTIMEOUT": "60"},
        {"PYIRONRESOURCEPATHS": "{tmp}/resources"},
        {"PYIRONSQLTYPE": "SQLite", "PYIRONSQLFILE": "{tmp}/central.db"},
        {"~/.pyiron": "[DEFAULT]\nTYPE = SQLite\nFILE = {tmp}/central.db\n"},
    ],
    ids=["timeout", "resource paths", "sql file", "a ~/.pyiron made later"],
)
def test_an_embedded_project_opens_on_its_database_whatever_the_environment_says(
    tmp_path: Path, isolated_home: Path, change: dict[str, str]
) -> None:
    """In a fresh process, as a user would meet it: the setting exists before the import."""
    folder = tmp_path / "px"
    sampled, relaxed = chain(folder, pipeline="p")
    names = sorted(open_project(folder).job_table()["job"])
    before = tree(folder)
    env = dict(os.environ)
    for key, value in change.items():
        value = value.format(tmp=tmp_path)
        if key == "~/.pyiron":
            (isolated_home / ".pyiron").write_text(value)
        else:
            env[key] = value
    code = f"""
        from assyst_nodes.nodes import stages
        from assyst_nodes.project import ProjectRecorder, open_project, structure_frame
        from assyst_nodes.stages.sample import Formulas
        from assyst_nodes.stages.relax import VolumeRelax
        from assyst_nodes.calculators import EMT
        pr = open_project({str(folder)!r})
        print(pr.database_kind, sorted(pr.job_table()["job"]), len(structure_frame(pr)))
        recorder = ProjectRecorder(pr, pipeline="p")
        out, _ = stages.sample(Formulas.range(("Cu",), 1, 3), spacegroups=[221, 225, 229],
                               max_atoms=2, seed=1, recorder=recorder)
        stages.relax(out, VolumeRelax(max_steps=5, calculator=EMT()), recorder=recorder)
        print(sorted(pr.job_table()["job"]))
        try:
            open_project({str(folder)!r}, use_user_config=True)
        except ValueError as error:
            print("refused:", "pack" in str(error) and "unpack" in str(error))
    """
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], env=env, cwd=tmp_path,
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.strip().splitlines()
    assert lines[0] == f"embedded {names} {len(sampled) + len(relaxed)}"
    assert lines[1] == str(names)  # reused: nothing written again
    assert lines[2] == "refused: True"
    after = tree(folder)
    assert {k: v for k, v in after.items() if k.endswith(".h5")} == {
        k: v for k, v in before.items() if k.endswith(".h5")
    }
    assert not (isolated_home / "pyiron.db").exists()
    assert not (tmp_path / "central.db").exists() or "sql file" not in str(change)


def test_the_documented_move_of_an_embedded_project_into_the_configured_database(
    tmp_path: Path, pyiron_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the refusal of ``use_user_config=True`` on an embedded folder says to do: pack the
    embedded project, unpack it into a folder of the configured database."""
    if pyiron_database == "sqlite":  # a configured database of its own: a central SQLite file
        monkeypatch.setenv("PYIRONSQLFILE", str(tmp_path / "central.db"))
    embedded = open_project(tmp_path / "embedded", use_user_config=False)
    sampled, relaxed = chain(embedded, pipeline="p")
    with pytest.raises(ValueError, match="always opened on it") as refused:
        open_project(tmp_path / "embedded", use_user_config=True)
    assert "pack(destination_path='jobs')" in str(refused.value)
    with contextlib.chdir(tmp_path):
        embedded.pack(destination_path="jobs")
        user = open_project(tmp_path / "moved", use_user_config=True)
        user.unpack("jobs.tar.gz")
    assert user.database_kind == "user" and not (tmp_path / "moved" / DB_FILE).exists()
    assert sorted(structure_frame(user)["uuid"]) == sorted(uuids(sampled) + uuids(relaxed))
    relax = user.load(str(user.job_table().set_index("hamilton").loc["AssystRelax", "job"]))
    assert uuids(relax.input_structures()[0]) == uuids(sampled)
    assert open_project(tmp_path / "embedded").database_kind == "embedded"  # still there


@pytest.mark.embedded_only
def test_a_folder_of_a_configured_database_is_never_taken_over_by_an_embedded_one(
    tmp_path: Path, isolated_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Jobs recorded with a pyiron configuration; the configuration goes away."""
    env = dict(os.environ, PYIRONSQLTYPE="SQLite", PYIRONSQLFILE=str(tmp_path / "central.db"))
    code = f"""
        from assyst_nodes.project import ProjectRecorder
        from stand_ins import cubes
        ProjectRecorder({str(tmp_path / "proj")!r}).record("cubes", {{}}, [], cubes)
    """
    tests = str(Path(__file__).parent)
    env["PYTHONPATH"] = os.pathsep.join([tests, env.get("PYTHONPATH", "")])
    subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env, check=True)
    before = tree(tmp_path / "proj")
    with pytest.raises(ValueError, match="holds pyiron job files"):
        open_project(tmp_path / "proj")
    with pytest.raises(ValueError, match="holds pyiron job files"):
        ProjectRecorder(tmp_path / "proj").record("cubes", {}, [], cubes)
    assert tree(tmp_path / "proj") == before
    assert not (tmp_path / "proj" / DB_FILE).exists()


@pytest.mark.embedded_only  # two job tables: two embedded roots
def test_a_job_file_of_another_job_table_is_never_deleted_or_written(tmp_path: Path) -> None:
    """A file of the same name that the job table does not know, written from another table
    (a copy of another project's file): the recorder and pyiron's save refuse to touch it."""
    first, second = open_project(tmp_path / "a"), open_project(tmp_path / "b")
    ProjectRecorder(first).record("cubes", {}, [], cubes)
    name = str(first.job_table()["job"].iloc[0])
    shutil.copy(tmp_path / "a" / f"{name}.h5", tmp_path / "b" / f"{name}.h5")
    content = (tmp_path / "b" / f"{name}.h5").read_bytes()
    with pytest.raises(ForeignJobError, match=name):
        ProjectRecorder(second).record("cubes", {}, [], cubes)
    job = second.create.job.AssystSample(name)
    for key, value in SAMPLE.items():
        setattr(job.input, key, value)
    with pytest.raises(ForeignJobError):
        job.run()
    assert (tmp_path / "b" / f"{name}.h5").read_bytes() == content
    assert second.job_table().empty


# ----------------------------------------------------------------------------------------------
# 3. references that survive pyiron's operations


def test_unpack_into_a_project_with_jobs_keeps_every_input_pointing_at_its_structures(
    tmp_path: Path,
) -> None:
    source = open_project(tmp_path / "source")
    sampled, relaxed = chain(source, seed=1, pipeline="packed")
    target = open_project(tmp_path / "target")
    chain(target, seed=2, pipeline="here")  # jobs with the ids the unpacked ones had
    chain(target, seed=3)
    source.pack(destination_path=str(tmp_path / "archive"))
    source.remove_jobs(recursive=True, silently=True, progress=False)  # the archive is all
    imported = target.create_group("imported")
    imported.unpack(origin_path=str(tmp_path / "archive.tar.gz"))
    # pyiron copies the archive's job table along; left there, a later unpack run from that
    # folder would read it instead of its archive's
    assert not (Path(imported.path) / "export.csv").exists()
    table = imported.job_table().set_index("hamilton")
    relax = imported.load(str(table.loc["AssystRelax", "job"]))
    assert relax.parent_id == int(table.loc["AssystSample", "id"])
    inputs = relax.input_structures()
    assert uuids(inputs[0]) == uuids(sampled)
    again, _ = rerun(imported, relax.job_name, force=True)
    assert uuids(again) == uuids(relaxed)
    assert [a.get_potential_energy() for a in again] == [a.get_potential_energy() for a in relaxed]
    assert imported.load(str(table.loc["AssystPipeline", "job"])).output["missing"] == []
    assert [link.step for link in history(imported, uuids(relaxed)[0])] == ["pyxtal", str(RELAX)]


def test_unpack_refuses_an_archive_whose_jobs_take_names_already_there(tmp_path: Path) -> None:
    source = open_project(tmp_path / "source")
    chain(source, seed=1)
    source.pack(destination_path=str(tmp_path / "archive"))
    target = open_project(tmp_path / "target")
    target.unpack(origin_path=str(tmp_path / "archive.tar.gz"))
    before = (len(target.job_table()), tree(tmp_path / "target"))
    with pytest.raises(ValueError, match="names of jobs already there"):
        target.unpack(origin_path=str(tmp_path / "archive.tar.gz"))
    assert (len(target.job_table()), tree(tmp_path / "target")) == before


def test_a_job_whose_input_job_was_replaced_cannot_be_computed_from_it(tmp_path: Path) -> None:
    pr = open_project(tmp_path / "proj")
    found = pr.create.job.AssystSample("crystals")
    for key, value in SAMPLE.items():
        setattr(found.input, key, value)
    found.run()
    relax = pr.create.job.AssystRelax("relaxed")
    relax.input.settings = RELAX
    relax.input.structures = "crystals"
    relax.run()
    pr.remove_job("crystals")
    other = pr.create.job.AssystSample("crystals")  # another job under the name
    for key, value in {**SAMPLE, "seed": 9}.items():
        setattr(other.input, key, value)
    other.run()
    with pytest.raises(InputChangedError, match="crystals"):
        pr.load("relaxed").input_structures()
    with pytest.raises(InputChangedError):
        rerun(pr, "relaxed", force=True)
    assert pr.get_job_status("relaxed") == "finished"  # refused before anything was removed


# ----------------------------------------------------------------------------------------------
# 4. the embedded job table is complete in pyiron.db


@pytest.mark.embedded_only
def test_the_embedded_job_table_is_in_pyiron_db_alone_after_a_run(tmp_path: Path) -> None:
    folder = tmp_path / "proj"
    chain(folder, pipeline="p")
    n = len(open_project(folder).job_table())
    assert not (folder / f"{DB_FILE}-wal").exists()
    backup = tmp_path / "backup.db"
    shutil.copy(folder / DB_FILE, backup)  # the file alone, while the process still runs
    with contextlib.closing(sqlite3.connect(backup)) as db:
        assert db.execute("SELECT COUNT(*) FROM jobs_pyiron").fetchone()[0] == n


@pytest.mark.embedded_only
def test_a_root_left_in_write_ahead_log_mode_is_switched_on_open(tmp_path: Path) -> None:
    folder = tmp_path / "old"
    code = f"""
        from assyst_nodes.project import ProjectRecorder
        from stand_ins import cubes
        ProjectRecorder({str(folder)!r}).record("cubes", {{}}, [], cubes)
        import sqlite3
        db = sqlite3.connect({str(folder / DB_FILE)!r})
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("UPDATE jobs_pyiron SET computer = 'wal'")
        db.commit()
        import os
        os._exit(0)  # as a process of an older version: the log is left beside the file
    """
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).parent))
    subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env, check=True)
    assert (folder / f"{DB_FILE}-wal").stat().st_size > 0
    assert len(open_project(folder).job_table()) == 1
    with contextlib.closing(sqlite3.connect(folder / DB_FILE)) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    backup = tmp_path / "backup.db"
    shutil.copy(folder / DB_FILE, backup)
    with contextlib.closing(sqlite3.connect(backup)) as db:
        assert db.execute("SELECT computer FROM jobs_pyiron").fetchall() == [("wal",)]


# ----------------------------------------------------------------------------------------------
# 5. pack and unpack from anywhere


@pytest.mark.parametrize("where", ["elsewhere", "inside", "relative"])
def test_pack_and_unpack_work_from_any_working_directory(tmp_path: Path, where: str) -> None:
    pr = open_project(tmp_path / "deep" / "proj")
    sampled, _ = chain(pr.create_group("sub"), pipeline="p")
    expected = sorted(structure_frame(pr)["uuid"])
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    cwd = {"elsewhere": elsewhere, "inside": tmp_path / "deep" / "proj" / "sub",
           "relative": elsewhere}[where]
    archive = "archive" if where == "relative" else str(tmp_path / "archive")
    with contextlib.chdir(cwd):
        pr.pack(destination_path=archive)
        target = open_project(tmp_path / "other" / "target")
        target.unpack(origin_path=f"{archive}.tar.gz")
    assert sorted(structure_frame(target)["uuid"]) == expected
    relax = target.load(str(target.job_table(recursive=True).set_index("hamilton").loc[
        "AssystRelax", "job"]))
    assert uuids(relax.input_structures()[0]) == uuids(sampled)


def test_pack_and_unpack_of_an_uncompressed_archive_folder(tmp_path: Path) -> None:
    pr = open_project(tmp_path / "proj")
    sampled, relaxed = chain(pr, pipeline="p")
    pr.pack(destination_path=str(tmp_path / "archive"), compress=False)
    target = open_project(tmp_path / "target")
    target.unpack(origin_path=str(tmp_path / "archive"))
    assert sorted(structure_frame(target)["uuid"]) == sorted(uuids(sampled) + uuids(relaxed))
    with pytest.raises(ValueError, match="names of jobs already there"):
        target.unpack(origin_path=str(tmp_path / "archive"))


@pytest.mark.embedded_only
def test_pack_of_a_moved_project(tmp_path: Path) -> None:
    chain(tmp_path / "proj", pipeline="p")
    (tmp_path / "proj").rename(tmp_path / "moved")
    pr = open_project(tmp_path / "moved")
    expected = sorted(structure_frame(pr)["uuid"])
    pr.pack(destination_path=str(tmp_path / "archive"))
    target = open_project(tmp_path / "target")
    target.unpack(origin_path=str(tmp_path / "archive.tar.gz"))
    assert sorted(structure_frame(target)["uuid"]) == expected


# ----------------------------------------------------------------------------------------------
# 6. copy_to a group


def test_copy_to_a_group_of_the_project(tmp_path: Path) -> None:
    pr = open_project(tmp_path / "proj")
    sampled, _ = chain(pr, pipeline="p")
    name = str(pr.job_table().set_index("hamilton").loc["AssystSample", "job"])
    copy = pr.load(name).copy_to(project=pr.create_group("b"))
    assert copy.project.path.rstrip("/").endswith("b")
    loaded = pr.create_group("b").load(name)
    assert uuids(loaded.output.structures) == uuids(sampled)
    frame = structure_frame(pr)
    assert frame["uuid"].is_unique
    assert set(uuids(sampled)) <= set(frame["uuid"])


@pytest.mark.parametrize("how", ["copy_to", "move_to"])
def test_pyirons_copy_and_move_of_a_project_into_another_keep_both_job_tables(
    tmp_path: Path, how: str
) -> None:
    """pyiron copies every file of a project folder besides the jobs: the embedded database and
    the structure index must not go over the destination's."""
    source, target = open_project(tmp_path / "a"), open_project(tmp_path / "b")
    sampled, relaxed = chain(source, seed=1, pipeline="p")
    chain(target, seed=2)
    kept = dict(rows(target))
    expected = sorted(uuids(sampled) + uuids(relaxed))
    getattr(source, how)(target)
    copied = rows(target)
    assert set(kept) <= set(copied) and len(copied) == len(kept) + 3
    assert {str(r["project"]) for r in copied.values()} == {target.project_path}
    relax = next(n for n in copied if n.startswith("relax") and n not in kept)
    assert uuids(target.load(relax).input_structures()[0]) == uuids(sampled)
    assert set(expected) <= set(structure_frame(target)["uuid"])
    if how == "copy_to":
        assert sorted(structure_frame(source)["uuid"]) == expected
    else:
        assert structure_frame(source).empty


# ----------------------------------------------------------------------------------------------
# 7. no exit delay with PostgreSQL


@pytest.mark.postgres_only  # the watchdog belongs to pyiron's server connections
def test_a_cli_call_and_a_script_exit_at_once_with_postgresql(tmp_path: Path) -> None:
    """pyiron's connection watchdog would hold each process for PYIRONCONNECTIONTIMEOUT (60 s);
    the bound guards that hang, not a speed."""
    ProjectRecorder(tmp_path / "proj", pipeline="p").record("cubes", {}, [], cubes)
    env = dict(os.environ, PYIRONCONNECTIONTIMEOUT="60")
    script = f"""
        from assyst_nodes.project import open_project, structure_frame
        print(len(structure_frame(open_project({str(tmp_path / "proj")!r}))))
    """
    for command in (
        [sys.executable, "-m", "assyst_nodes", "jobs", str(tmp_path / "proj")],
        [sys.executable, "-c", textwrap.dedent(script)],
    ):
        start = time.monotonic()
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
        seconds = time.monotonic() - start
        assert done.returncode == 0, done.stderr[-2000:]
        assert seconds < 30, f"{command[1:3]} took {seconds:.1f} s (pyiron's watchdog: 60 s)"


# ----------------------------------------------------------------------------------------------
# 8. status, parents, the home directory


def test_a_pipeline_with_an_aborted_stage_is_aborted(tmp_path: Path) -> None:
    """Every volume relaxation fails (EMT has no Fe): the relax job is aborted, so is the
    pipeline, though the macro went on with what it had."""
    pr = open_project(tmp_path / "proj")
    run = pwf.run(
        nodes.assyst, **{**TINY, "elements": ["Fe"], "radii": {"Fe": 1.0}},
        recorder=ProjectRecorder(pr, pipeline="fe"),
    )
    table = pr.job_table().set_index("hamilton")
    assert "aborted" in set(table.loc["AssystRelax", "status"])
    assert table.loc["AssystPipeline", "status"] == "aborted"
    assert run.outputs.training_set  # the unrelaxed crystals went on


def test_a_recomputed_aborted_job_names_the_job_that_made_its_input_as_parent(
    tmp_path: Path,
) -> None:
    pr = open_project(tmp_path / "proj")
    recorder = ProjectRecorder(pr)
    made, _ = recorder.record("cubes", {}, [], lambda: cubes(n=3))
    with pytest.raises(RuntimeError):
        recorder.record("shift", {}, [made], lambda: (_ for _ in ()).throw(RuntimeError("x")))
    recorder.record("combine", {}, [made], lambda: (made, cubes(n=0)[1]))  # passes them on
    recorder.record("shift", {}, [made], lambda: shifted(made))  # the aborted one, again
    table = pr.job_table().set_index("job")
    maker = table.index[0]
    shift = next(n for n in table.index if n.startswith("shift"))
    assert table.loc[shift, "parentid"] == table.loc[maker, "id"]
    assert table.loc[shift, "status"] == "finished"


def test_structures_and_frame_agree_on_every_job_after_pyirons_removals(tmp_path: Path) -> None:
    pr = open_project(tmp_path / "proj")
    chain(pr, seed=1, pipeline="one")
    chain(pr, seed=2, pipeline="two")
    name = str(pr.job_table().set_index("hamilton").loc["AssystRelax", "job"].iloc[0])
    pr.load(name).remove()
    frame = structure_frame(pr)
    assert sorted(frame["uuid"]) == sorted(uuids(structures(pr)))
    assert set(frame["job_id"]) <= {int(r["id"]) for r in rows(pr).values()}


@pytest.mark.embedded_only
@pytest.mark.parametrize("first", ["assyst_nodes.project", "pyiron_base"])
def test_what_is_written_home_is_what_docs_project_md_says(
    tmp_path: Path, isolated_home: Path, first: str
) -> None:
    """docs/project.md ("What is written where"): nothing in HOME when this package is imported
    first; pyiron_base imported first makes its own ~/pyiron.db and ./pyiron.log, and our jobs
    still go to the embedded database."""
    code = f"""
        import {first}
        from assyst_nodes.project import ProjectRecorder, open_project
        from stand_ins import cubes
        ProjectRecorder("proj").record("cubes", {{}}, [], cubes)
        print(open_project("proj").database_kind, len(open_project("proj").job_table()))
    """
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).parent))
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], env=env, cwd=tmp_path,
        capture_output=True, text=True, timeout=300, check=True,
    )
    assert done.stdout.split() == ["embedded", "1"]
    text = (Path(__file__).parent.parent / "docs" / "project.md").read_text()
    assert "creates `~/pyiron.db`" in text and "`./pyiron.log`" in text
    made = first == "pyiron_base"
    assert (isolated_home / "pyiron.db").exists() == made
    assert (tmp_path / "pyiron.log").exists() == made
    assert sorted(p.name for p in isolated_home.iterdir()) == (["pyiron.db"] if made else [])
    if made:  # pyiron's own default table; our job is not in it
        with contextlib.closing(sqlite3.connect(isolated_home / "pyiron.db")) as db:
            tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master")}
            if "jobs_pyiron" in tables:
                assert db.execute("SELECT COUNT(*) FROM jobs_pyiron").fetchone()[0] == 0


def test_h5_files_of_a_run_hold_no_numeric_job_reference(tmp_path: Path) -> None:
    """What pyiron renumbers (ids) must not be how our files point at each other."""
    pr = open_project(tmp_path / "proj")
    chain(pr, pipeline="p")
    for file in (tmp_path / "proj").glob("*.h5"):
        with h5py.File(file) as handle:
            group = handle[file.stem]
            assert "input/input_job_ids" not in group and "output/job_ids" not in group
