"""A hypothesis state machine whose rules are what pyiron users do to our projects, and whose
invariants say that nothing was lost or corrupted. Not a test module: ``test_project_stateful``
runs it in CI with a small budget, ``benchmarks/stateful_project.py`` with a large one.

Rules: run a small pipeline (sample -> relax -> perturb with the real stage nodes; a new pipeline
name, the same settings, other settings), a killed writer (a process running one, SIGKILLed at a
random time) and the resumed run, ``rerun(force=True)`` of a stage job, pyiron's ``remove_job``
(by name and by id) of a stage or a pipeline job, ``job.remove()``, ``remove_jobs``,
``remove_pipeline(with_stage_jobs=True)``, ``cp -r`` and ``mv`` of a project folder (embedded
databases), pyiron's ``pack``/``unpack`` into an empty and into a non-empty project,
``job.copy_to`` into a group, pyiron's ``Project.copy_to`` and ``move_to`` of a whole project,
a plain ``pyiron_base.Project`` opened on a folder, and ``PYIRON*`` variables set and unset.
Every example starts with one pipeline run in the first project.

The model: per project folder, the stage jobs it holds (by folder and name) and what each job
holds (output uuids, and the uuids of each input list and the job they came from), learned once
per settings from a reference run; per pipeline job, the stage jobs it lists. Invariants, after
every step, for every project:

* the job table lists exactly the model's jobs, each name once; every stage job loads and holds
  its structures;
* ``structure_frame`` gives exactly the uuids of the existing jobs, each once, and
  ``structures`` the same; ``history`` cites only jobs in the table;
* every input reference resolves to the structures the job was made from (or, where the model
  says the input job is gone, raises ``MissingInputError``);
* a pipeline lists what the model says; its ``missing`` are the listed jobs that are gone, and
  the job table shows it ``aborted`` exactly then;
* no file of a project changed unless the step acted on that project (nothing done in a copy
  changes the original), and a rerun computed exactly the jobs the model lacked.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from assyst_nodes.calculators import EMT
from assyst_nodes.lineage import UUID
from assyst_nodes.nodes import stages
from assyst_nodes.project import (
    MissingInputError,
    ProjectRecorder,
    history,
    open_project,
    remove_pipeline,
    rerun,
    structure_frame,
    structures,
)
from assyst_nodes.project.jobs import JobInput
from assyst_nodes.project.recorder import pipeline_job_name
from assyst_nodes.stages.perturb import Rattle
from assyst_nodes.stages.relax import VolumeRelax
from assyst_nodes.stages.sample import Formulas

SEEDS = (1, 2)
"""The settings a pipeline can be run with (the sample seed; the other settings are fixed)."""
PIPELINES = ("a", "b", "c")
GROUP = "g"
"""The one sub-project jobs are copied into."""
RELAX = VolumeRelax(max_steps=3, calculator=EMT())

PIPELINE_CODE = """
from assyst_nodes.calculators import EMT
from assyst_nodes.stages.sample import Formulas
from assyst_nodes.nodes import stages
from assyst_nodes.stages.perturb import Rattle
from assyst_nodes.stages.relax import VolumeRelax


def run_pipeline(recorder, seed):
    sampled, _ = stages.sample(Formulas.range(("Cu",), 1, 3), spacegroups=[221, 225, 229],
                               max_atoms=2, seed=seed, recorder=recorder)
    relaxed, _ = stages.relax(sampled, VolumeRelax(max_steps=3, calculator=EMT()),
                              recorder=recorder)
    stages.perturb(relaxed, [Rattle(0.05)], seed=seed, recorder=recorder)
"""


def run_pipeline(recorder: Any, seed: int) -> None:
    """sample -> relax -> perturb with the real stage nodes (Cu, at most 2 atoms, EMT)."""
    sampled, _ = stages.sample(
        Formulas.range(("Cu",), 1, 3), spacegroups=[221, 225, 229], max_atoms=2, seed=seed,
        recorder=recorder,
    )
    relaxed, _ = stages.relax(sampled, RELAX, recorder=recorder)
    stages.perturb(relaxed, [Rattle(0.05)], seed=seed, recorder=recorder)


COMPUTED: list[str] = []
"""Names of the stage jobs computed (not reused) by :class:`CountingRecorder` since cleared."""


@dataclass(frozen=True)
class CountingRecorder(ProjectRecorder):
    """A :class:`ProjectRecorder` that notes each job it computes in :data:`COMPUTED`."""

    def record(self, stage: str, settings: Any, inputs: Any, compute: Callable[..., Any]) -> Any:
        from assyst_nodes.project.recorder import job_name

        name = job_name(stage, settings, inputs)

        @functools.wraps(compute)  # keeps the signature: the stage's cache still reaches it
        def counted(*args: Any, **kwargs: Any) -> Any:
            COMPUTED.append(name)
            return compute(*args, **kwargs)

        return super().record(stage, settings, inputs, counted)


@dataclass(frozen=True)
class Job:
    """What a stage job holds: its stage, output uuids, and per input list the job it came from
    (None: stored in the job) and its uuids."""

    stage: str
    outputs: tuple[str, ...]
    inputs: tuple[tuple[str | None, tuple[str, ...]], ...]


REFERENCES: dict[int, dict[str, Job]] = {}
"""Seed -> job name -> :class:`Job`, from one uninterrupted run per seed (made on first use)."""


def reference(seed: int) -> dict[str, Job]:
    """The stage jobs a run with ``seed`` makes, read from an uninterrupted run."""
    if seed not in REFERENCES:
        folder = Path(tempfile.mkdtemp(prefix=f"reference{seed}-"))
        try:
            pr = open_project(folder, use_user_config=False)
            run_pipeline(ProjectRecorder(pr), seed)
            jobs = {}
            for name in pr.job_table()["job"]:
                job = pr.load(str(name))
                sources = job.input.structures
                jobs[str(name)] = Job(
                    job.stage_name,
                    tuple(a.info[UUID] for a in job.output.structures),
                    tuple(
                        (s.name if isinstance(s, JobInput) else None, tuple(u))
                        for s, u in zip(sources, job.input_uuids(), strict=True)
                    ),
                )
            REFERENCES[seed] = jobs
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    return REFERENCES[seed]


@dataclass
class Model:
    """What one project folder holds: stage jobs by (sub-folder, name) ("" for the folder itself),
    and per pipeline job the stage jobs it lists (pipelines live in the folder itself)."""

    path: Path
    embedded: bool
    jobs: dict[tuple[str, str], Job] = field(default_factory=dict)
    pipelines: dict[str, set[str]] = field(default_factory=dict)

    def names(self) -> set[tuple[str, str]]:
        return set(self.jobs) | {("", p) for p in self.pipelines}


def _digest(folder: Path) -> dict[str, str]:
    """sha256 of every file below ``folder``."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _job_rows(pr: Any) -> list[dict[str, Any]]:
    """The job-table rows of ``pr``'s folder and its sub-folders."""
    found = pr.db.get_items_dict({"project": pr.project_path + "%"})
    return [r for r in found if str(r["project"]).startswith(pr.project_path)]


class ProjectMachine(RuleBasedStateMachine):
    """See the module docstring. ``database`` ("sqlite" or "postgres") is set by the test."""

    database: ClassVar[str] = "sqlite"
    figures: ClassVar[dict[str, int]] = {}

    def __init__(self) -> None:
        super().__init__()
        self.tmp = Path(tempfile.mkdtemp(prefix="machine-"))
        self.projects: dict[str, Model] = {}
        self.digests: dict[str, dict[str, str]] = {}
        self.touched: set[str] = set()
        self.environment: dict[str, str | None] = {}
        self.kills = 0
        self.counter = 0
        self._new_project("main")
        self.figures["examples"] = self.figures.get("examples", 0) + 1

    # ------------------------------------------------------------------ helpers

    @property
    def embedded(self) -> bool:
        return self.database == "sqlite"

    def _new_project(self, key: str) -> Model:
        self.counter += 1
        path = self.tmp / f"{key}{self.counter}"
        open_project(path, use_user_config=not self.embedded)
        self.projects[key] = Model(path, self.embedded)
        self.touched.add(key)
        return self.projects[key]

    def _project(self, model: Model, folder: str = "") -> Any:
        return open_project(model.path / folder if folder else model.path)

    def _note(self, rule: str) -> None:
        self.figures[rule] = self.figures.get(rule, 0) + 1

    def _ran(self, model: Model, seed: int, pipeline: str) -> None:
        """The model after a run of ``seed`` under ``pipeline`` in ``model``'s folder."""
        jobs = reference(seed)
        model.jobs.update({("", name): job for name, job in jobs.items()})
        model.pipelines.setdefault(pipeline_job_name(pipeline), set()).update(jobs)

    def _pick(self, data: Any, keys: Any) -> Any:
        return data.draw(st.sampled_from(sorted(keys)))

    def teardown(self) -> None:
        for key, value in self.environment.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        for model in self.projects.values():
            if not model.embedded and model.path.is_dir():  # keep the central table small
                with contextlib.suppress(Exception):  # the verdict is made already
                    self._project(model).remove_jobs(recursive=True, silently=True,
                                                     progress=False)
        shutil.rmtree(self.tmp, ignore_errors=True)

    # ------------------------------------------------------------------ rules

    @initialize(seed=st.sampled_from(SEEDS), pipeline=st.sampled_from(PIPELINES))
    def first_run(self, seed: int, pipeline: str) -> None:
        """Every example starts with a pipeline in the first project."""
        model = self.projects["main"]
        run_pipeline(ProjectRecorder(model.path, pipeline=pipeline), seed)
        self._ran(model, seed, pipeline)
        self.touched.add("main")

    @rule(data=st.data(), seed=st.sampled_from(SEEDS), pipeline=st.sampled_from(PIPELINES))
    def run(self, data: Any, seed: int, pipeline: str) -> None:
        """A pipeline: a new name, the same settings, or other settings; a rerun computes only
        the jobs the project lacks."""
        key = self._pick(data, self.projects)
        model = self.projects[key]
        missing = {name for name in reference(seed) if ("", name) not in model.jobs}
        COMPUTED.clear()
        run_pipeline(CountingRecorder(model.path, pipeline=pipeline), seed)
        assert set(COMPUTED) == missing, (sorted(COMPUTED), sorted(missing))
        self._ran(model, seed, pipeline)
        self.touched.add(key)
        self._note("run")

    @precondition(lambda self: self.kills < 1)
    @rule(data=st.data(), seed=st.sampled_from(SEEDS))
    def killed_writer(self, data: Any, seed: int) -> None:
        """A process running a pipeline is SIGKILLed at a random time; the run is resumed."""
        key = self._pick(data, self.projects)
        model = self.projects[key]
        delay = data.draw(st.floats(0.5, 6.0))
        code = PIPELINE_CODE + textwrap.dedent(
            f"""
            from assyst_nodes.project import ProjectRecorder
            run_pipeline(ProjectRecorder({str(model.path)!r}, pipeline="killed"), {seed})
            """
        )
        process = subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE)
        time.sleep(delay)
        process.send_signal(signal.SIGKILL)
        process.wait()
        self.kills += 1
        run_pipeline(ProjectRecorder(model.path, pipeline="killed"), seed)
        self._ran(model, seed, "killed")
        self.touched.add(key)
        self._note("killed_writer")

    @precondition(lambda self: any(m.jobs for m in self.projects.values()))
    @rule(data=st.data())
    def rerun_job(self, data: Any) -> None:
        """``rerun(force=True)``: the job again from its stored input, or refused (nothing
        removed) where an input job is gone."""
        key = self._pick(data, [k for k, m in self.projects.items() if m.jobs])
        model = self.projects[key]
        folder, name = self._pick(data, model.jobs)
        job = model.jobs[(folder, name)]
        gone = [s for s, _ in job.inputs if s is not None and (folder, s) not in model.jobs]
        pr = self._project(model, folder)
        if gone:
            with pytest.raises(MissingInputError):
                rerun(pr, name, force=True)
        else:
            found, _ = rerun(pr, name, force=True)
            assert tuple(a.info[UUID] for a in found) == job.outputs
        self.touched.add(key)
        self._note("rerun_job")

    @precondition(lambda self: any(m.jobs for m in self.projects.values()))
    @rule(data=st.data(), how=st.sampled_from(["remove_job name", "remove_job id", "job.remove"]))
    def remove_stage_job(self, data: Any, how: str) -> None:
        key = self._pick(data, [k for k, m in self.projects.items() if m.jobs])
        model = self.projects[key]
        folder, name = self._pick(data, model.jobs)
        pr = self._project(model, folder)
        if how == "remove_job name":
            pr.remove_job(name)
        elif how == "remove_job id":
            pr.remove_job(int(pr.get_job_id(name)))
        else:
            pr.load(name).remove()
        del model.jobs[(folder, name)]
        self.touched.add(key)
        self._note("remove_stage_job")

    @precondition(lambda self: any(m.pipelines for m in self.projects.values()))
    @rule(data=st.data(), with_stage_jobs=st.booleans())
    def remove_a_pipeline(self, data: Any, with_stage_jobs: bool) -> None:
        """pyiron's ``remove_job`` of a pipeline job (its stage jobs stay), or
        ``remove_pipeline(with_stage_jobs=True)`` (those no other pipeline lists go too)."""
        key = self._pick(data, [k for k, m in self.projects.items() if m.pipelines])
        model = self.projects[key]
        name = self._pick(data, model.pipelines)
        listed = model.pipelines.pop(name)
        if with_stage_jobs:
            others = set().union(*model.pipelines.values()) if model.pipelines else set()
            removed = set(remove_pipeline(model.path, name, with_stage_jobs=True))
            gone = {n for n in listed if n not in others and ("", n) in model.jobs}
            assert removed == gone | {name}, (sorted(removed), sorted(gone))
            for job in gone:
                del model.jobs[("", job)]
        else:
            self._project(model).remove_job(name)
        self.touched.add(key)
        self._note("remove_a_pipeline")

    @rule(data=st.data())
    def remove_jobs(self, data: Any) -> None:
        key = self._pick(data, self.projects)
        model = self.projects[key]
        self._project(model).remove_jobs(recursive=True, silently=True, progress=False)
        model.jobs.clear()
        model.pipelines.clear()
        self.touched.add(key)
        self._note("remove_jobs")

    @precondition(lambda self: self.embedded and len(self.projects) < 4)
    @rule(data=st.data())
    def copy_folder(self, data: Any) -> None:
        """``cp -r`` of a project folder: the copy is a project of its own."""
        key = self._pick(data, self.projects)
        model = self.projects[key]
        self.counter += 1
        target = self.tmp / f"copy{self.counter}"
        shutil.copytree(model.path, target)
        self.projects[f"copy{self.counter}"] = Model(
            target, True, copy.deepcopy(model.jobs), copy.deepcopy(model.pipelines)
        )
        self.touched.add(f"copy{self.counter}")
        self._note("copy_folder")

    @precondition(lambda self: self.embedded)
    @rule(data=st.data())
    def move_folder(self, data: Any) -> None:
        """``mv`` of a project folder."""
        key = self._pick(data, self.projects)
        model = self.projects[key]
        self.counter += 1
        target = self.tmp / f"moved{self.counter}"
        model.path.rename(target)
        model.path = target
        self.touched.add(key)
        self._note("move_folder")

    @precondition(lambda self: len(self.projects) < 4)
    @rule(data=st.data(), into=st.sampled_from(["empty", "non-empty"]), elsewhere=st.booleans())
    def pack_unpack(self, data: Any, into: str, elsewhere: bool) -> None:
        """pyiron's pack, then unpack into a new project or into another one with jobs
        (refused, nothing changed, where names would clash); from any working directory."""
        key = self._pick(data, self.projects)
        model = self.projects[key]
        self.counter += 1
        archive = self.tmp / f"archive{self.counter}"
        cwd = self.tmp if elsewhere else model.path
        with contextlib.chdir(cwd):
            self._project(model).pack(destination_path=str(archive))
        assert not (model.path / "export.csv").exists()
        self.touched.add(key)  # pyiron's pack writes its job table into the folder, then removes it
        if into == "empty" or len(self.projects) < 2:
            target = self._new_project(f"unpacked{self.counter}")
            target_key = f"unpacked{self.counter}"
        else:
            target_key = self._pick(data, [k for k in self.projects if k != key])
            target = self.projects[target_key]
        # pyiron unpacks relative to the deepest folder all archived jobs share
        folders = {f for f, _ in model.names()}
        moved = {GROUP: ""} if folders == {GROUP} else {}
        jobs = {(moved.get(f, f), n): job for (f, n), job in model.jobs.items()}
        clash = {(moved.get(f, f), n) for f, n in model.names()} & target.names()
        before = _digest(target.path)
        pr = self._project(target)
        if clash:
            with pytest.raises(ValueError, match="names of jobs already there"):
                pr.unpack(origin_path=f"{archive}.tar.gz")
            assert _digest(target.path) == before
        else:
            pr.unpack(origin_path=f"{archive}.tar.gz")
            assert not (target.path / "export.csv").exists()
            target.jobs.update(copy.deepcopy(jobs))
            for name, listed in model.pipelines.items():
                target.pipelines[name] = set(listed)
        self.touched.add(target_key)
        self._note(f"unpack {into}{' clash' if clash else ''}")

    @precondition(lambda self: any(m.jobs for m in self.projects.values()))
    @rule(data=st.data())
    def copy_job_to_group(self, data: Any) -> None:
        """``job.copy_to(project=<a group of the project>)``."""
        key = self._pick(data, [k for k, m in self.projects.items() if m.jobs])
        model = self.projects[key]
        candidates = [j for j in model.jobs if j[0] == "" and (GROUP, j[1]) not in model.jobs]
        if not candidates:
            return
        _, name = self._pick(data, candidates)
        pr = self._project(model)
        pr.load(name).copy_to(project=pr.create_group(GROUP))
        model.jobs[(GROUP, name)] = model.jobs[("", name)]
        self.touched.add(key)
        self._note("copy_job_to_group")

    @precondition(lambda self: len(self.projects) < 4)
    @rule(data=st.data(), how=st.sampled_from(["copy_to", "move_to"]))
    def copy_or_move_project(self, data: Any, how: str) -> None:
        """pyiron's ``Project.copy_to`` or ``move_to`` of a whole project into a new one."""
        key = self._pick(data, self.projects)
        model = self.projects[key]
        target = self._new_project(f"{how}{self.counter + 1}")
        getattr(self._project(model), how)(self._project(target))
        target.jobs.update(copy.deepcopy(model.jobs))
        for name, listed in model.pipelines.items():
            target.pipelines[name] = set(listed)
        if how == "move_to":
            model.jobs.clear()
            model.pipelines.clear()
        self.touched.add(key)  # pyiron writes each job it copies back into its file first
        self._note(how)

    @rule(data=st.data())
    def plain_pyiron_project(self, data: Any) -> None:
        """A plain ``pyiron_base.Project`` of a folder (after the folder was opened)."""
        import pyiron_base

        model = self.projects[self._pick(data, self.projects)]
        self._project(model)
        plain = pyiron_base.Project(str(model.path))
        table = plain.job_table(recursive=True)
        expected = {n for _, n in model.names()}
        assert (set() if table.empty else set(table["job"])) == expected
        self._note("plain_pyiron_project")

    @rule(
        name=st.sampled_from(["PYIRONCONNECTIONTIMEOUT", "PYIRONRESOURCEPATHS", "PYIRONSQLFILE"]),
        value=st.booleans(),
    )
    def environment_variable(self, name: str, value: bool) -> None:
        """A ``PYIRON*`` variable set or unset: projects keep their databases."""
        if name == "PYIRONSQLFILE" and not self.embedded:
            return  # the configured database of the PostgreSQL run itself
        names = [name, "PYIRONSQLTYPE"] if name == "PYIRONSQLFILE" else [name]
        for key in names:
            if key not in self.environment:
                self.environment[key] = os.environ.get(key)
        if value:
            os.environ[name] = {
                "PYIRONCONNECTIONTIMEOUT": "30",
                "PYIRONRESOURCEPATHS": str(self.tmp / "resources"),
                "PYIRONSQLFILE": str(self.tmp / "central.db"),
            }[name]
            if name == "PYIRONSQLFILE":
                os.environ["PYIRONSQLTYPE"] = "SQLite"
        else:
            for key in names:
                os.environ.pop(key, None)
        self._note("environment_variable")

    # ------------------------------------------------------------------ invariants

    @invariant()
    def nothing_lost(self) -> None:
        for key, model in self.projects.items():
            if key not in self.touched and key in self.digests:
                now, before = _digest(model.path), self.digests[key]
                changed = sorted(f for f in set(now) | set(before) if now.get(f) != before.get(f))
                assert not changed, f"{key} changed by another's step: {changed}"
            self._check(model)
        for key, model in self.projects.items():
            self.digests[key] = _digest(model.path)
        self.touched.clear()

    def _check(self, model: Model) -> None:
        pr = self._project(model)
        found = _job_rows(pr)
        names = [(str(r["project"])[len(pr.project_path):].strip("/"), str(r["job"]))
                 for r in found]
        assert len(names) == len(set(names)), f"duplicate jobs: {sorted(names)}"
        assert set(names) == model.names(), (sorted(names), sorted(model.names()))
        ids = {int(r["id"]) for r in found}
        status = {n: str(r["status"]) for n, r in zip(names, found, strict=True)}
        outputs: set[str] = set()
        for (folder, name), job in sorted(model.jobs.items()):
            loaded = self._project(model, folder).load(name)
            assert tuple(a.info[UUID] for a in loaded.output.structures) == job.outputs
            assert status[(folder, name)] == "finished"
            outputs.update(job.outputs)
            gone = [s for s, _ in job.inputs if s is not None and (folder, s) not in model.jobs]
            if gone:
                with pytest.raises(MissingInputError):
                    loaded.input_structures()
            else:
                lists = loaded.input_structures()
                assert [tuple(a.info[UUID] for a in x) for x in lists] == [
                    u for _, u in job.inputs
                ]
        frame = structure_frame(pr)
        assert frame["uuid"].is_unique
        assert set(frame["uuid"]) == outputs
        assert set(frame["job_id"]) <= ids
        assert sorted(a.info[UUID] for a in structures(pr)) == sorted(frame["uuid"])
        for uuid in sorted(outputs)[:: max(1, len(outputs) // 3)]:
            assert {link.job_id for link in history(pr, uuid)} <= ids
        for name, listed in model.pipelines.items():
            output = pr.load(name).output
            assert set(output["jobs"]) == listed
            missing = sorted(n for n in listed if ("", n) not in model.jobs)
            assert sorted(output["missing"]) == missing
            assert status[("", name)] == ("aborted" if missing else "finished"), (
                name, status[("", name)], missing
            )


def machine_for(database: str) -> type[ProjectMachine]:
    """The machine class for ``database`` ("sqlite": embedded roots; "postgres": the configured
    database of the environment)."""
    return type(f"ProjectMachine_{database}", (ProjectMachine,), {"database": database,
                                                                  "figures": {}})
