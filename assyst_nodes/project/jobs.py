"""pyiron_base job classes: one per stage (its class name is the job table's ``hamilton``), and
:class:`AssystPipeline`, which lists the stage jobs of one ASSYST run (and can run the whole
macro itself).

They are ordinary pyiron jobs::

    pr = open_project("cu_ag")                    # or any pyiron Project (group) of the user
    job = pr.create.job.AssystRelax("relax_cu")
    job.input.settings = VolumeRelax(calculator=EMT())
    job.input.structures = pr.load("sample_cu")   # a stage job, its name or id, or list[ase.Atoms]
    job.server.cores = 2                          # worker processes of the stage
    job.run()                                     # or job.server.queue = "..." first: submitted
    job.output.structures                         # list[ase.Atoms]; job.output.report, ...
    job["output/structures/positions"]            # pyiron's accessors read the stored arrays

:class:`~assyst_nodes.project.recorder.ProjectRecorder` makes the same jobs when a node graph
runs into a project (named by a hash of stage, settings and inputs, so a rerun finds them).

``job.input`` holds the keyword arguments of the stage's node (``assyst_nodes.nodes.stages``;
e.g. ``settings`` and ``time_limit`` of ``relax``) and ``structures``, where the input comes
from. An input that is another stage job's output is referenced by that job's **name** (and
its folder relative to this job's), never by pyiron's numeric id, which ``unpack`` renumbers;
the uuids of every input list are stored when the job is saved, and reading the input checks
that the referenced job still holds exactly those structures (:class:`InputChangedError`
otherwise), so a job can never be computed again from another job's structures. Layout of a
stage job ``<name>`` in its project folder ``<folder>``::

    <folder>/<name>.h5
      /<name>/assyst_database              the job table it was written from (its identity)
      /<name>/input/stage                  the stage name
      /<name>/input/settings               readable text of the settings (keys sorted)
      /<name>/input/settings_pickle        base64 of the pickled settings mapping
      /<name>/input/key_settings           the settings that decide a structure's outcome
                                           (:func:`key_settings`), hashed into the index key
      /<name>/input/input_jobs             per input list (JSON): the job whose output it is,
                                           as a path relative to <folder> ("sample_ab12..."),
                                           or "" where the list is stored in this job
      /<name>/input_structures/uuids, sizes  the input structures' uuids, lists concatenated
      /<name>/input_structures/list_<k>    input list k when it is no job's output (a store)
      /<name>/output/report                the stage report (JSON)
      /<name>/output/n_structures, n_lost  structures out; structures lost to errors
      /<name>/output/seconds_compute, seconds_store   wall times (s)
      /<name>/output/executor, slurm_job_ids  where it ran (also in the report's execution)
      /<name>/output/structures            the output structures, a columnar store
                                           (:mod:`assyst_nodes.project.store`)
    <folder>/assyst_index.db               structure index of the folder (a cache)
    <folder>/.locks/<name>.lock            per-job lock files of the recorder

Job-table columns filled here: ``status`` is ``finished``, ``warning`` when structures were lost
to errors (calculator errors, non-finite results, time limits; the report says which), or
``aborted`` when every input was lost so; ``chemicalformula`` is the empirical formula when all
output structures share one (e.g. ``Cu``), else the chemical system (``Ag-Cu``); ``parentid`` is
the job whose output the first input list is (or that made its first structure). No stage job
has a ``masterid``: a stage job may serve several pipelines (see
:mod:`assyst_nodes.project.pipelines`).
"""

from __future__ import annotations

import base64
import inspect
import json
import os
import pickle
import posixpath
import shlex
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from time import perf_counter
from typing import Any, Final

import h5py
import numpy as np
from ase import Atoms
from ase.formula import Formula

from assyst_nodes.lineage import UUID
from assyst_nodes.reports import StageReport

from ..provenance import computed_with
from . import pyiron_internals
from .binding import BoundProject, bound_project
from .database import (
    ForeignJobError,
    database_identity,
    embedded_root,
    pyiron_base,
    pyiron_lock,
    quiet,
    user_config_present,
)
from .index import Index, Stored, settings_key
from .job_input import (
    _MAX_INPUTS,
    InputChangedError,
    JobInput,
    MissingInputError,
    OldJobId,
    Source,
    StageInput,
    StageOutput,
    StoredList,
    _parse_source,
    _source_text,
    _stage_defaults,
    _stage_function,
    job_h5,
    job_stamp,
    key_settings,
    pickled_settings,
    settings_repr,
    versions_text,
)
from .layout import (
    DATABASE,
    INPUT_LISTS,
    USABLE_STATUSES,
    DamagedJobError,
    input_uuid_arrays,
    job_file,
    read_database,
    read_input_uuids,
    read_output,
    read_output_uuids,
    read_partial,
    report_to_json,
    write_input_lists,
    write_result,
)
from .outcomes import outcomes_by_input, with_cache
from .pipelines import (
    JOBS,
    OLD_JOB_IDS,
    add_jobs,
    listed_jobs,
    pipeline_state,
    update_pipelines_listing,
)
from .store import LIBVER, read_structures

__all__ = [
    "RESULT_JOBS",
    "STAGE_JOBS",
    "USABLE_STATUSES",
    "AssystCombine",
    "AssystFilter",
    "AssystFit",
    "AssystJob",
    "AssystLabel",
    "AssystPerturb",
    "AssystPipeline",
    "AssystRelax",
    "AssystResult",
    "AssystSample",
    "AssystStage",
    "AssystSuite",
    "AssystValidate",
    "InputChangedError",
    "JobInput",
    "MissingInputError",
    "StageInput",
    "StageOutput",
    "job_class",
    "job_h5",
    "job_stamp",
    "key_settings",
    "pickled_settings",
    "release_stage_jobs",
    "settings_repr",
    "versions_text",
]

class AssystJob(pyiron_base.GenericJob):  # type: ignore[misc,name-defined]
    """Base of the assyst job classes.

    A job always talks to its own job table: pyiron gives a loaded job a plain ``Project``,
    which uses whichever database pyiron's process-wide state points at, so the job's project
    is replaced by one bound to the database of its folder (its embedded root's, else the
    user's). Its file records that database (:data:`~assyst_nodes.project.layout.DATABASE`);
    saving over a job file written from another job table raises :class:`ForeignJobError`.
    pyiron's removal also clears the folder's index and marks the pipelines using a stage job.

    Parameters
    ----------
    project : pyiron_base.ProjectHDFio
        The job's HDF5 handle in its project folder, as pyiron passes it: jobs are made with
        ``pr.create.job.<JobClass>(name)`` (or loaded with ``pr.load``), not by calling the
        class.
    job_name : str
        The job's name, unique in its project folder; its file is ``<job_name>.h5``.
    """

    def __init__(self, project: Any, job_name: str) -> None:
        _bind(project)
        super().__init__(project, job_name)
        self.__version__ = "0.3"

    @property
    def project(self) -> Any:
        """The job's project, bound to the database of its folder (pyiron hands a job plain
        projects when it loads, copies or moves it; they are bound here on first use)."""
        _bind(self.project_hdf5)
        return self.project_hdf5.project

    @property
    def h5_file(self) -> Path:
        """The job's HDF5 file."""
        return Path(self.project_hdf5.file_name)

    @property
    def folder(self) -> Path:
        """The project folder holding the job's file (and the folder's index)."""
        return self.h5_file.parent

    def _to_dict(self) -> dict[str, Any]:
        data = super()._to_dict()
        data["REQUIRE_FULL_OBJ_FOR_RM"] = True  # pyiron calls _before_generic_remove_child
        data[DATABASE] = _identity(self.project)
        return data

    def _check_if_input_should_be_written(self) -> bool:
        """No input files: the job runs in Python (no ``<name>_hdf5`` folder on save)."""
        return False

    def save(self) -> None:
        """Save as pyiron does; refused (:class:`ForeignJobError`, nothing written) where a
        file of this name that the job table does not know was written from another job
        table."""
        error = _foreign_file(self)
        if error is not None:
            raise error
        super().save()

    def _internal_copy_to(
        self,
        project: Any = None,
        new_job_name: str | None = None,
        new_database_entry: bool = True,
        copy_files: bool = True,
        delete_existing_job: bool = False,
    ) -> Any:
        """pyiron's copy; into a project of *another* database (another embedded root, or the
        user's database) the copy's job-table row is made in that database from this job's row
        (pyiron assumes one database and would look this job's id up in the other one)."""
        if not (new_database_entry and self._across(project)):
            return super()._internal_copy_to(
                project=project, new_job_name=new_job_name,
                new_database_entry=new_database_entry, copy_files=copy_files,
                delete_existing_job=delete_existing_job,
            )
        row = dict(self.project.db.get_item_by_id(self.job_id))
        copied = super()._internal_copy_to(
            project=project, new_job_name=new_job_name, new_database_entry=False,
            copy_files=copy_files, delete_existing_job=delete_existing_job,
        )
        job, _, _, reloaded = copied
        if not reloaded:
            pyiron_internals.add_copied_row(job, row)
        return copied

    def _across(self, project: Any) -> bool:
        """Whether ``project`` (a project, a job or an HDF5 handle) is in another database than
        this (saved) job."""
        source = self.project
        target = getattr(project, "project", project)  # a job or an HDF5 handle: its project
        return (
            self.job_id is not None
            and isinstance(source, BoundProject)
            and isinstance(target, BoundProject)
            and source.binding != target.binding
        )

    def move_to(self, project: Any) -> None:
        """pyiron's move; into a project of another database it is a copy (a row of its own in
        that database) and the removal of this job, after which this object is the copy
        (pyiron would re-point this job's row, by its id, in the other database)."""
        if not self._across(project):
            super().move_to(project)
            return
        copied = self.copy_to(project=project)
        self.remove()
        self.project_hdf5 = copied.project_hdf5.copy()
        self.reset_job_id(job_id=copied.job_id)

    def drop_status_to_aborted(self) -> None:
        """pyiron's, but a job file of another job table is left as it is (pyiron writes the
        status into the file when ``run`` fails, also when it failed because of that file)."""
        if _foreign_file(self) is None:
            super().drop_status_to_aborted()

    def _before_generic_remove_child(self) -> None:
        """pyiron is removing this job (``remove_job``, ``remove_jobs``, ``remove``,
        ``job.remove()``): forget its index rows and lock file."""
        Index(self.folder).remove_job(self.job_name)
        (self.folder / ".locks" / f"{self.job_name}.lock").unlink(missing_ok=True)

    def _set_status(self, status: str, file: bool = True) -> None:
        """Set the status in the job table (and, with ``file``, in the job's file)."""
        setattr(self.status, status, True)
        if file:
            self.project_hdf5["status"] = self.status.string

    def run_if_scheduler(self) -> Any:
        """Submit to pyiron's queue adapter (``job.server.queue``). A job of the user's
        configured database goes as any pyiron job; one of an embedded database is run in the
        batch job by ``python -m assyst_nodes.project.wrapper``, which opens that database
        first (pyiron's own wrapper would look the job's id up in the user's database)."""
        root = self.project.embedded_root if isinstance(self.project, BoundProject) else None
        if root is None:
            return super().run_if_scheduler()
        command = " ".join(
            shlex.quote(part)
            for part in (
                "python", "-m", "assyst_nodes.project.wrapper", "--root", str(root),
                "--job-id", str(self.job_id), "--working-directory", self.working_directory,
            )
        )
        self.project_hdf5.create_working_directory()
        pyiron_internals.submit_to_queue(self, command)
        return None


def _bind(project_hdf5: Any) -> None:
    """Give a job's HDF5 handle a project bound to the database of its folder, when it holds
    a plain pyiron ``Project`` (a loaded job) and the folder has a database we know (an
    embedded root, or the user's configuration)."""
    project = pyiron_internals.project_of(project_hdf5)
    if project is None or isinstance(project, BoundProject):
        return
    folder = Path(project.path)
    if embedded_root(folder) is None and not user_config_present():
        return  # no database we know: pyiron's own state decides, as for any pyiron job
    pyiron_internals.set_project_of(project_hdf5, bound_project(folder))


def _identity(project: Any) -> str:
    """The identity of the job table ``project`` uses ('' for a project we do not bind)."""
    if not isinstance(project, BoundProject):
        return ""
    return database_identity(project.binding)


def _foreign_file(job: AssystJob) -> ForeignJobError | None:
    """The error to raise if ``job``'s file exists, the job table has no row for it, and it was
    written from another job table than ``job``'s (None otherwise)."""
    if not job.h5_file.exists() or job.job_id is not None:  # the file first: no query
        return None
    current = _identity(job.project)
    try:
        written = read_database(job.h5_file, job.job_name)
    except DamagedJobError:
        return None  # not a readable job of this name: pyiron writes its group anew
    return ForeignJobError(job.h5_file, written, current) if written != current else None


class AssystStage(AssystJob):
    """A stage run: input settings and structures, output structures, report and timings.

    ``job.input`` is a :class:`StageInput`, ``job.output`` a :class:`StageOutput`. The stage
    classes (:class:`AssystSample`, ...) set ``stage``; a job of this class itself is the
    record of a stage without its own class (it keeps its stage name) and cannot be run.

    Parameters
    ----------
    project : pyiron_base.ProjectHDFio
        The job's HDF5 handle in its project folder, as pyiron passes it: jobs are made with
        ``pr.create.job.<JobClass>(name)`` (or loaded with ``pr.load``), not by calling the
        class.
    job_name : str
        The job's name, unique in its project folder; its file is ``<job_name>.h5``.
    """

    stage: str = ""

    def __init__(self, project: Any, job_name: str) -> None:
        super().__init__(project, job_name)
        self._input = StageInput(self.stage, _stage_defaults(self.stage) if self.stage else None)
        self._input.__dict__["_project"] = self.project
        self._input.__dict__["_folder"] = self.folder
        self._output = StageOutput(self)
        self._saving_uuids: list[list[str]] | None = None  # stored by the next save

    @property
    def input(self) -> StageInput:
        return self._input

    @property
    def output(self) -> StageOutput:
        return self._output

    @property
    def stage_name(self) -> str:
        """The stage (``relax``, ...; a stage without its own class keeps its name here)."""
        return self.stage or str(self._input._stage)

    # ---------------------------------------------------------------- stored form

    def _input_entries(self) -> dict[str, Any]:
        settings = self._input.kwargs(check=False)
        sources = self._input.structures
        return {
            "input/stage": self.stage_name,
            "input/settings": settings_repr(settings),
            "input/settings_pickle": pickled_settings(settings),
            "input/key_settings": key_settings(self.stage_name, settings, self.computed_with()),
            "input/computed_with": json.dumps(self.computed_with(), sort_keys=True),
            "input/input_jobs": json.dumps([_source_text(s) for s in sources]),
        }

    def _to_dict(self) -> dict[str, Any]:
        data = super()._to_dict()
        data.update(self._input_entries())
        uuids = self._saving_uuids
        if uuids is not None:  # written with the input, in pyiron's own session
            data.update(input_uuid_arrays(uuids))
        return data

    def _from_dict(self, obj_dict: dict[str, Any], version: str | None = None) -> None:
        super()._from_dict(obj_dict, version)
        stored = obj_dict.get("input", {})
        stage = stored.get("stage")
        if stage and not self.stage:
            self._input.__dict__["_stage"] = str(stage)
        versions = stored.get("computed_with")
        self._input.__dict__["_computed_with"] = json.loads(str(versions)) if versions else {}
        blob = stored.get("settings_pickle")
        if blob:
            try:
                values = pickle.loads(base64.b64decode(blob))
            except Exception as error:  # a class that no longer imports, ...
                raise DamagedJobError(self.job_name, self.h5_file, error) from error
            self._input.__dict__["_values"].update(values)
        positions = iter(range(_MAX_INPUTS))
        sources: list[Source] = []
        if "input_jobs" in stored:
            for text in json.loads(str(stored["input_jobs"])):
                sources.append(_parse_source(text, positions))
        else:  # a job of a version before 0.3: numeric ids, -1 for a stored list
            for job_id in np.atleast_1d(stored.get("input_job_ids", [])).tolist():
                stored_list = StoredList(next(positions)) if job_id < 0 else None
                sources.append(OldJobId(int(job_id)) if stored_list is None else stored_list)
        self._input.__dict__["_sources"] = sources

    def from_hdf(self, hdf: Any = None, group_name: str | None = None) -> None:
        super().from_hdf(hdf=hdf, group_name=group_name)
        if "output" in self.project_hdf5.list_groups():
            with self.project_hdf5.open("output") as output:
                self._output.values = {key: output[key] for key in output.list_nodes()}

    # ---------------------------------------------------------------- reading

    def structures(self) -> list[Atoms]:
        """The output structures."""
        return read_output(self.h5_file, self.job_name)[0]

    def report(self) -> StageReport:
        """The stage report."""
        return read_output(self.h5_file, self.job_name)[1]

    def settings_key(self) -> str:
        """Hash of the stage and its settings: the jobs of one key give a structure the same
        outcome (see :meth:`assyst_nodes.project.index.Index.outcomes`)."""
        return settings_key(
            self.stage_name,
            key_settings(self.stage_name, self._input.kwargs(check=False), self.computed_with()),
        )

    def computed_with(self) -> dict[str, str]:
        """The versions of the distributions that computed (or compute) this job
        (:func:`~assyst_nodes.provenance.computed_with`; empty for a job of a version before
        0.3, which did not record them)."""
        return dict(self._input.__dict__.get("_computed_with") or {})

    def settings_object(self) -> dict[str, Any]:
        """The settings mapping the stage ran with (unpickled: trust the project you load)."""
        return self._input.kwargs(check=False)

    def input_uuids(self) -> list[list[str]]:
        """The uuids of each input list, in order (stored when the job was saved)."""
        return read_input_uuids(self.h5_file, self.job_name) or []

    def _input_row(self, source: JobInput | OldJobId) -> dict[str, Any]:
        """The job-table row of the job whose output ``source`` is; ``ValueError`` naming it if
        it is not in the job table."""
        if isinstance(source, OldJobId):
            row = self.project.db.get_item_by_id(source.job_id)
        else:
            where = posixpath.normpath(
                posixpath.join(self.project.project_path, source.folder)
            ) + "/"
            rows = self.project.db.get_items_dict({"job": source.name, "project": where})
            row = rows[0] if rows else None
        if row is None:
            raise MissingInputError(
                f"job {self.job_name}: its input job {source} is not in the job table (removed, "
                "or not copied along); run the pipeline that made it again, or give the job its "
                "input again"
            )
        return dict(row)

    def input_structures(self) -> list[list[Atoms]]:
        """The input lists: read from the jobs whose output they are, or from this job's file.

        A list read from another job must hold exactly the structures (uuids, in order) this
        job was saved with; :class:`InputChangedError` otherwise."""
        lists: list[list[Atoms]] = []
        expected: list[list[str]] | None = None  # the uuids saved with the job, read once
        for k, source in enumerate(self._input.structures):
            if isinstance(source, list):
                lists.append(source)
                continue
            if isinstance(source, StoredList):
                with job_file(self.h5_file, self.job_name) as handle:
                    group = handle[f"{self.job_name}/{INPUT_LISTS.format(int(source))}"]
                    lists.append(read_structures(group))
                continue
            row = self._input_row(source)
            structures = read_output(job_h5(row), str(row["job"]))[0]
            if expected is None:
                saved = self.h5_file.exists() and read_input_uuids(self.h5_file, self.job_name)
                expected = saved or []
            found = [str(a.info.get(UUID, "")) for a in structures]
            if k < len(expected) and found != expected[k]:
                raise InputChangedError(
                    f"job {self.job_name}: its input job {row['job']} now holds other structures "
                    f"({len(found)}) than the {len(expected[k])} it was made from; it was made "
                    "again with other settings, or another job took its name. The job cannot be "
                    "computed from it: run its pipeline again, or give it its input again"
                )
            lists.append(structures)
        return lists

    def _materialize_stored_lists(self) -> None:
        """Read the input lists stored in this job's file into memory (before pyiron deletes
        the file, e.g. ``run(delete_existing_job=True)``, so a new save writes them again)."""
        sources = self._input.structures
        if not any(isinstance(s, StoredList) for s in sources) or not self.h5_file.exists():
            return
        stored = {}
        with job_file(self.h5_file, self.job_name) as handle:
            for source in sources:
                if isinstance(source, StoredList):
                    group = handle[f"{self.job_name}/{INPUT_LISTS.format(int(source))}"]
                    stored[int(source)] = read_structures(group)
        self._input.__dict__["_sources"] = [
            stored[int(s)] if isinstance(s, StoredList) else s for s in sources
        ]

    def remove_child(self) -> None:
        self._materialize_stored_lists()
        super().remove_child()

    def _before_generic_remove_child(self) -> None:
        super()._before_generic_remove_child()
        update_pipelines_listing(self.project, self.folder, self.job_name, removed=True)

    # ---------------------------------------------------------------- running

    def validate_ready_to_run(self) -> None:
        """Check the input before pyiron saves the job (clear errors naming what is wrong)."""
        if _stage_function(self.stage) is None:
            raise NotImplementedError(
                f"{type(self).__name__} jobs have no stage function to run; they are records"
            )
        settings = self._input.kwargs()  # required settings
        pickled_settings(settings)  # refused now, naming the setting, before pyiron saves
        if not self.computed_with():  # a job a user made: what computes it now
            self._input.__dict__["_computed_with"] = computed_with(self.stage, settings)
        wanted = 0 if self.stage == "sample" else 1
        if len(self._input.structures) < wanted:
            raise ValueError(
                f"{self.job_name}: set job.input.structures (a stage job, its id or name, or a "
                "list of ase.Atoms) before running it"
            )

    def save(self, input_uuids: Sequence[Sequence[str]] | None = None) -> None:
        """Save as pyiron does, with the uuids of every input list; then store each input list
        given as structures.

        The parent (``parentid``) is the job whose output the first input list is, unless one
        was set.

        Parameters
        ----------
        input_uuids : sequence of sequence of str, optional
            The uuids of each input list, in order, where the caller knows them. Default:
            ``None`` (read from the input jobs' outputs, or from the structures given).

        Raises
        ------
        MissingInputError
            Where an input job is not in the job table.
        ForeignJobError
            Where a file of this name that the job table does not know was written from
            another job table (nothing written).
        """
        self._materialize_stored_lists()
        sources = self._input.structures
        referenced = [k for k, s in enumerate(sources) if isinstance(s, (JobInput, OldJobId))]
        needed = input_uuids is None or (self.parent_id is None and 0 in referenced)
        rows = {k: self._input_row(sources[k]) for k in referenced} if needed else {}
        if self.parent_id is None and 0 in rows:
            self.parent_id = int(rows[0]["id"])
        if input_uuids is None:
            input_uuids = [
                read_output_uuids(job_h5(rows[k]), str(rows[k]["job"])) if k in rows
                else [str(a.info.get(UUID, "")) for a in s]  # type: ignore[union-attr]
                for k, s in enumerate(sources)
            ]
        self._saving_uuids = [list(u) for u in input_uuids]
        try:
            super().save()
        finally:
            self._saving_uuids = None
        lists = [s for s in sources if isinstance(s, list)]
        if lists:
            write_input_lists(self.h5_file, self.job_name, lists)

    def run_static(self) -> None:
        """Compute the stage from ``job.input`` (with ``server.cores`` worker processes) and
        store the result (pyiron calls this on ``run()``, also in a queue's job)."""
        function = _stage_function(self.stage)
        if function is None:  # pragma: no cover - validate_ready_to_run refuses first
            raise NotImplementedError(f"{type(self).__name__} has no stage function")
        self._set_status("running", file=False)
        try:
            inputs = self.input_structures()
        except BaseException:
            self._set_status("aborted")
            raise
        run_stage(self.stage, inputs, self._input.kwargs(), _IntoJob(self),
                  workers=max(1, int(self.server.cores or 1)), progress=False)

    def compute_and_store(
        self,
        compute: Callable[[], tuple[list[Atoms], StageReport]],
        inputs: Sequence[Sequence[Atoms]],
    ) -> tuple[list[Atoms], StageReport]:
        """Run ``compute`` and store its result in this (saved) job (see :meth:`store`).

        Parameters
        ----------
        compute : callable
            Takes no arguments; returns the output structures and the stage report.
        inputs : sequence of sequence of ase.Atoms
            The input lists the structures were computed from.

        Returns
        -------
        tuple of (list of ase.Atoms, StageReport)
            What ``compute`` returned (the structures as a list).

        Raises
        ------
        BaseException
            Whatever ``compute`` raises, after marking the job ``aborted``.
        """
        start = perf_counter()
        try:
            structures, report = compute()
            structures = list(structures)
        except BaseException:
            with pyiron_lock:
                self.refresh_job_status()
                self._set_status("aborted")
            raise
        self.store(structures, report, perf_counter() - start, inputs)
        return structures, report

    def store(
        self,
        structures: list[Atoms],
        report: StageReport,
        seconds_compute: float,
        inputs: Sequence[Sequence[Atoms]],
    ) -> None:
        """Write output, report, timings and status into the job's file (one session).

        Also sets status, chemical formula and run time in the job table, and indexes the
        structures where the status is usable (:data:`USABLE_STATUSES`). The status is
        ``finished``, ``warning`` if structures were lost to errors, ``aborted`` if all were.

        Parameters
        ----------
        structures : list of ase.Atoms
            The output structures.
        report : StageReport
            The stage report.
        seconds_compute : float
            Wall time of the computation (s).
        inputs : sequence of sequence of ase.Atoms
            The input lists (their structures count for ``aborted``, give the chemical formula
            where there is no output, and their uuids are indexed).
        """
        start = perf_counter()
        report_json = report_to_json(report)
        n_in = sum(len(s) for s in inputs) if inputs else report.n_in
        status = status_of(report, n_in)
        values: dict[str, Any] = {
            "report": report_json,
            "n_structures": len(structures),
            "n_lost": report.n_lost,
            "seconds_compute": float(seconds_compute),
            "executor": str(report.execution.get("executor", "")),
            "slurm_job_ids": np.array(
                [int(i) for i in report.execution.get("slurm_job_ids", [])], dtype=np.int64
            ),
        }
        table, parents, values["seconds_store"] = write_result(
            self.h5_file, self.job_name, structures, report_json, values, status, start
        )
        self._output.values = dict(values)
        with pyiron_lock:
            self.refresh_job_status()  # pyiron's status object may hold an older connection
            formula = chemical_formula(structures or [a for s in inputs for a in s])
            if formula:
                self.project.db.item_update({"chemicalformula": formula}, self.job_id)
            self._set_status(status, file=False)
            self.run_time_to_db()
            update_pipelines_listing(self.project, self.folder, self.job_name)
        if status in USABLE_STATUSES:
            stored = Stored(
                table,
                parents,
                [str(a.info.get(UUID, "")) for s in inputs for a in s],
                self.settings_key(),
                [(d.label, d.reason, d.detail) for d in report.drops],
            )
            Index(self.folder).add_job(
                self.job_name, int(self.job_id), job_stamp(self.job_id, self.h5_file),
                self.stage_name, stored,
            )


class _IntoJob:
    """A recorder that stores the stage run into one saved job (``job.run()``)."""

    def __init__(self, job: AssystStage) -> None:
        self.job = job

    def record(
        self,
        stage: str,
        settings: Mapping[str, Any],
        inputs: Sequence[Sequence[Atoms]],
        compute: Callable[[], tuple[list[Atoms], StageReport]],
    ) -> tuple[list[Atoms], StageReport]:
        job = self.job
        carried: dict[str, Any] = {}
        if job.h5_file.exists():  # an earlier run of this job left finished chunks
            try:
                carried = outcomes_by_input(*read_partial(job.h5_file, job.job_name))
            except DamagedJobError:
                carried = {}
        compute = with_cache(compute, job, carried)
        return job.compute_and_store(compute, inputs)


def run_stage(
    stage: str,
    inputs: Sequence[Sequence[Atoms]],
    settings: Mapping[str, Any],
    recorder: Any,
    **options: Any,
) -> tuple[list[Atoms], StageReport | None]:
    """Run the node of ``stage`` on ``inputs`` with ``settings`` through ``recorder``;
    ``options`` (``workers``, ``executor``, ...) go to the stages that take them. Returns the
    structures and report (``None`` for combine, whose node gives structures only)."""
    function = _stage_function(stage)
    if function is None:
        raise ValueError(f"no stage function for stage {stage!r}")
    accepted = inspect.signature(function).parameters
    options = {k: v for k, v in options.items() if k in accepted}
    if stage == "combine":
        if not 1 <= len(inputs) <= _MAX_INPUTS:
            raise ValueError(f"combine takes 1 to {_MAX_INPUTS} inputs, got {len(inputs)}")
        return function(*inputs, recorder=recorder), None
    if stage == "sample":
        return function(**settings, **options, recorder=recorder)
    if len(inputs) != 1:
        raise ValueError(f"stage {stage} takes one input list, got {len(inputs)}")
    return function(inputs[0], **settings, **options, recorder=recorder)


def status_of(report: StageReport, n_in: int) -> str:
    """``finished``; ``warning`` if structures were lost to errors; ``aborted`` if all were."""
    lost = report.n_lost
    if lost == 0:
        return "finished"
    return "aborted" if lost >= max(n_in, report.n_in) else "warning"


def chemical_formula(structures: Sequence[Atoms]) -> str | None:
    """The empirical formula shared by all ``structures`` (e.g. ``AgCu2``), else the chemical
    system (elements sorted, joined by ``-``: ``Ag-Cu``); None for no structures. At most 50
    characters (pyiron's column)."""
    if not structures:
        return None
    formulas = {a.get_chemical_formula(mode="hill", empirical=True) for a in structures}
    if len(formulas) == 1:
        text = formulas.pop()
    else:
        elements = sorted({s for f in formulas for s in Formula(f).count()})
        text = "-".join(elements)
    return text[:50]


class AssystSample(AssystStage):
    """A ``sample`` run (random symmetric crystals); input: the ``sample`` node's settings."""

    stage = "sample"


class AssystRelax(AssystStage):
    """A ``relax`` run; input ``settings`` (a ``Relax`` config), ``time_limit`` (s)."""

    stage = "relax"


class AssystLabel(AssystStage):
    """A ``label`` run (single points: energy eV, forces eV/Å, stress); input ``calculator``."""

    stage = "label"


class AssystPerturb(AssystStage):
    """A ``perturb`` run; input ``perturbations``, ``filters``, ``retries``, ``seed``."""

    stage = "perturb"


class AssystFilter(AssystStage):
    """A ``filter`` run; input ``filters``."""

    stage = "filter"


class AssystCombine(AssystStage):
    """A ``combine`` run (concatenation, each uuid once); input ``structures``: up to four."""

    stage = "combine"


STAGE_JOBS: Final[dict[str, type[AssystStage]]] = {
    "sample": AssystSample,
    "relax": AssystRelax,
    "label": AssystLabel,
    "perturb": AssystPerturb,
    "filter": AssystFilter,
    "combine": AssystCombine,
}
STAGE_OF_CLASS: Final[dict[str, str]] = {cls.__name__: s for s, cls in STAGE_JOBS.items()}
STAGE_OF_CLASS["AssystStage"] = ""


_RELEASED: set[tuple[Any, ...]] = set()
"""(binding, project path) of the folders :func:`release_stage_jobs` went through."""


def release_stage_jobs(project: Any) -> list[int]:
    """Make stage jobs that versions before 0.3 made pyiron children of a pipeline nobody's child.

    The stage jobs of ``project``'s folder (and below) whose ``masterid`` is an
    :class:`AssystPipeline` job get no ``masterid``, so that removing that pipeline removes no
    stage job. Done once per process and folder (later calls return ``[]``).

    Parameters
    ----------
    project : BoundProject
        A project bound to its database (:func:`~assyst_nodes.project.operations.open_project`
        calls this on every project it opens).

    Returns
    -------
    list of int
        The job ids changed.
    """
    key = (project.binding, project.project_path)
    if key in _RELEASED:
        return []
    rows = project.db.get_items_dict(
        {"project": project.project_path + "%", "hamilton": list(STAGE_OF_CLASS)}
    )
    masters = {int(r["masterid"]) for r in rows if r.get("masterid") not in (None, "")}
    pipelines = {
        i for i in masters
        if (row := project.db.get_item_by_id(i)) is not None
        and row["hamilton"] == "AssystPipeline"
    }
    changed = [
        int(r["id"]) for r in rows
        if r.get("masterid") not in (None, "") and int(r["masterid"]) in pipelines
    ]
    for job_id in changed:
        project.db.item_update({"masterid": None}, job_id)
    _RELEASED.add(key)
    return changed


def job_class(stage: str) -> type[AssystStage]:
    """The job class of ``stage`` (:class:`AssystStage` for a stage without its own class).

    Parameters
    ----------
    stage : str
        The stage (``sample``, ``relax``, ``label``, ``perturb``, ``filter``, ``combine``).

    Returns
    -------
    type
        Its class in :data:`STAGE_JOBS`, else :class:`AssystStage`.
    """
    return STAGE_JOBS.get(stage, AssystStage)


class AssystPipeline(AssystJob):
    """One ASSYST pipeline run: lists, by name, the stage jobs the run used (reused ones
    included); it is not their pyiron master, so removing it removes no stage job (see
    :mod:`assyst_nodes.project.pipelines`).

    Made by a :class:`~assyst_nodes.project.recorder.ProjectRecorder` with a ``pipeline`` name
    (then it only groups: ``input.pipeline`` holds the name), or by a user:
    ``pr.create.job.AssystPipeline("cu_ag")`` with ``job.input`` holding the macro's inputs
    (``elements``, ``max_atoms``, ``calculator``, ... see :func:`assyst_nodes.nodes.assyst`);
    ``job.run()`` then runs the whole macro with ``server.cores`` workers, every stage a job of
    its folder listed here.

    ``job.output``: ``jobs`` (the names listed), ``job_ids`` (the ids of those in the job
    table now), ``missing`` (the names listed that are not: removed since), ``status`` (the
    aggregate of the listed jobs' statuses, as the job table shows it once a run or a removal
    has updated it).

    Parameters
    ----------
    project : pyiron_base.ProjectHDFio
        The job's HDF5 handle in its project folder, as pyiron passes it
        (``pr.create.job.AssystPipeline(name)`` makes the job).
    job_name : str
        The pipeline's name, unique in its project folder; its file is ``<job_name>.h5``.
    """

    def __init__(self, project: Any, job_name: str) -> None:
        super().__init__(project, job_name)
        self._input = StageInput("pipeline", {**_macro_defaults(), "pipeline": None})

    @property
    def input(self) -> StageInput:
        return self._input

    def jobs(self) -> list[str]:
        """The names of the stage jobs this pipeline lists (for a pipeline of a version before
        0.2, which listed ids, the names those ids have in the job table now)."""
        if not self.h5_file.exists():
            return []
        names = listed_jobs(self.h5_file, self.job_name)
        if names is not None:
            return names
        with job_file(self.h5_file, self.job_name) as handle:
            ids = [int(i) for i in np.atleast_1d(handle[f"{self.job_name}/{OLD_JOB_IDS}"][...])]
        rows = [self.project.db.get_item_by_id(i) for i in ids]
        return [str(r["job"]) for r in rows if r is not None]

    @property
    def output(self) -> dict[str, Any]:
        names = self.jobs()
        status, ids, missing = pipeline_state(self.project, names)
        return {
            "jobs": names,
            "job_ids": np.array([ids[n] for n in names if n in ids], dtype=np.int64),
            "missing": missing,
            "status": status,
        }

    def refresh_status(self) -> str:
        """Set this pipeline's status in the job table (and its file) to the aggregate of its
        stage jobs' (see :func:`~assyst_nodes.project.pipelines.aggregate_status`); returns it."""
        status = self.output["status"]
        with pyiron_lock:
            self.refresh_job_status()
            if self.status.string != status:
                self._set_status(status)
        return str(status)

    def _to_dict(self) -> dict[str, Any]:
        data = super()._to_dict()
        settings = self._input.kwargs(check=False)
        data["input/settings"] = settings_repr(settings)
        data["input/settings_pickle"] = pickled_settings(settings)
        if "pipeline" in settings:
            data["input/pipeline"] = str(settings["pipeline"])
        data[JOBS] = json.dumps(self.jobs() if self.job_id is not None else [])
        return data

    def _from_dict(self, obj_dict: dict[str, Any], version: str | None = None) -> None:
        super()._from_dict(obj_dict, version)
        blob = obj_dict.get("input", {}).get("settings_pickle")
        if blob:
            self._input.__dict__["_values"].update(pickle.loads(base64.b64decode(blob)))

    def add_jobs(self, names: Sequence[str]) -> list[str]:
        """List stage jobs ``names`` (each once) in this pipeline.

        Parameters
        ----------
        names : sequence of str
            Names of stage jobs; those listed already are not listed again.

        Returns
        -------
        list of str
            All names listed now, the new ones last.
        """
        return add_jobs(self.h5_file, self.job_name, names)

    def validate_ready_to_run(self) -> None:
        settings = self._input.kwargs()
        if "pipeline" in settings:
            raise ValueError(
                f"{self.job_name} groups the stage jobs of the named pipeline "
                f"{settings['pipeline']!r}; it is not run itself"
            )

    def run_static(self) -> None:
        """Run the ASSYST macro with ``job.input`` into this job's project, every stage a job
        of its folder listed here; the status is then the stage jobs' aggregate."""
        import pyiron_workflow as pwf

        from assyst_nodes.nodes import assyst

        from .recorder import ProjectRecorder

        self._set_status("running", file=False)
        settings = {k: v for k, v in self._input.kwargs().items() if k != "pipeline"}
        recorder = ProjectRecorder(self.project, pipeline_job=self.job_name)
        try:
            with quiet():
                pwf.run(assyst, **settings, workers=max(1, int(self.server.cores or 1)),
                        progress=False, recorder=recorder)
        except BaseException:
            self._set_status("aborted")
            raise
        self.refresh_status()
        with pyiron_lock:
            self.run_time_to_db()


def _macro_defaults() -> dict[str, Any]:
    """The macro's inputs and defaults, without the ones a job sets itself."""
    from assyst_nodes.nodes import assyst

    skip = {"workers", "executor", "progress", "recorder"}
    return {
        name: parameter.default
        for name, parameter in inspect.signature(assyst).parameters.items()
        if name not in skip
    }


for _name in [*STAGE_OF_CLASS, "AssystPipeline"]:
    pyiron_base.JOB_CLASS_DICT[_name] = __name__


# -------------------------------------------------------------------- fit, suite, validation


class AssystResult(AssystJob):
    """Base of the jobs that hold one computed result and its files: a fit
    (:class:`AssystFit`), a labelled validation suite (:class:`AssystSuite`) and a validation
    (:class:`AssystValidate`). They are made, looked up and reused by
    :mod:`assyst_nodes.project.fitting` and :mod:`assyst_nodes.project.validating`; ``run()``
    does not compute them.

    The files a result comes with (a potential file, the fitting code's log, figures) are
    written into the job's working directory (``<folder>/<name>_hdf5/<name>/``, which pyiron's
    ``copy_to``, ``move_to`` and ``remove_job`` carry or remove with the job) *and* into the
    job's HDF5 file, so a ``pack`` of ``.h5`` files alone (pyiron's default) keeps them: a
    file missing from the working directory, or differing from the stored bytes, is written
    there again from the job's file when it is asked for (:meth:`result_files`). Layout::

        <folder>/<name>.h5
          /<name>/assyst_database          the job table it was written from
          /<name>/input/<key>              the input, as text (``settings``, ``settings_pickle``,
                                           ``computed_with``, ``input_jobs``, ...)
          /<name>/input_structures/uuids, sizes   uuids of the input structure lists (a fit)
          /<name>/output/<key>             the result (``result``: JSON, ...)
          /<name>/output/file_names        JSON list of the files, relative to the working
                                           directory
          /<name>/output/files/file_<k>    the bytes of file k (uint8)

    Parameters
    ----------
    project : pyiron_base.ProjectHDFio
        The job's HDF5 handle in its project folder, as pyiron passes it.
    job_name : str
        The job's name, unique in its project folder; its file is ``<job_name>.h5``.
    """

    def __init__(self, project: Any, job_name: str) -> None:
        super().__init__(project, job_name)
        self._values: dict[str, str] = {}
        self._saving_uuids: list[list[str]] | None = None

    @property
    def input(self) -> dict[str, str]:
        """The stored input, text by key (set before the job is saved)."""
        return self._values

    @property
    def output(self) -> dict[str, Any]:
        """The stored output: ``result`` parsed from JSON (``{}`` before it is stored)."""
        text = self.output_text("result")
        return json.loads(text) if text else {}

    def _to_dict(self) -> dict[str, Any]:
        data = super()._to_dict()
        for key, value in self._values.items():
            data[f"input/{key}"] = str(value)
        if self._saving_uuids is not None:
            data.update(input_uuid_arrays(self._saving_uuids))
        return data

    def _from_dict(self, obj_dict: dict[str, Any], version: str | None = None) -> None:
        super()._from_dict(obj_dict, version)
        stored = obj_dict.get("input", {})
        self._values = {str(k): v for k, v in stored.items() if isinstance(v, str)}

    def save(self, input_uuids: Sequence[Sequence[str]] | None = None) -> None:
        """Save as pyiron does, with the uuids of the input structure lists if given.

        Parameters
        ----------
        input_uuids : sequence of sequence of str, optional
            The uuids of each input list (a fit: training, validation). Default: none.
        """
        self._saving_uuids = None if input_uuids is None else [list(u) for u in input_uuids]
        try:
            super().save()
        finally:
            self._saving_uuids = None

    def input_uuids(self) -> list[list[str]]:
        """The uuids of each input list, in order (empty where none were stored)."""
        return read_input_uuids(self.h5_file, self.job_name) or []

    def output_text(self, key: str) -> str:
        """The text stored at ``output/<key>`` (``""`` if there is none).

        Raises
        ------
        DamagedJobError
            If the job's file is missing or cannot be read.
        """
        with job_file(self.h5_file, self.job_name) as handle:
            group = handle[self.job_name]
            path = f"output/{key}"
            if path not in group:
                return ""
            return group[path][...].tobytes().decode("utf-8")

    def store_result(
        self, values: Mapping[str, str], files: Sequence[str | Path], seconds: float
    ) -> None:
        """Write ``values`` (text at ``output/<key>``) and ``files`` (their bytes) into the
        job's file with the status ``finished`` (one HDF5 session), then set the status and run
        time in the job table.

        Parameters
        ----------
        values : mapping of str to str
            What the result is, as text (JSON).
        files : sequence of str or pathlib.Path
            Files of the result, inside the job's working directory (stored by their path
            relative to it; a file elsewhere by its name).
        seconds : float
            Wall time of the computation (s), stored as ``output/seconds_compute``.
        """
        folder = Path(self.working_directory)
        names: list[str] = []
        blobs: list[np.ndarray] = []
        for file in files:
            path = Path(file)
            try:
                names.append(path.relative_to(folder).as_posix())
            except ValueError:
                names.append(path.name)
            blobs.append(np.frombuffer(path.read_bytes(), dtype=np.uint8))
        with h5py.File(self.h5_file, "a", libver=LIBVER) as handle:
            group = handle[self.job_name]
            output = group.require_group("output")
            for key, value in values.items():
                pyiron_internals.write_h5io(output, key, str(value))
            pyiron_internals.write_h5io(output, "seconds_compute", float(seconds))
            pyiron_internals.write_h5io(output, "file_names", json.dumps(names))
            if "files" in output:
                del output["files"]
            stored = output.create_group("files")
            for k, blob in enumerate(blobs):
                pyiron_internals.write_h5io(stored, f"file_{k}", blob)
            pyiron_internals.write_h5io(group, "status", "finished")
        with pyiron_lock:
            self.refresh_job_status()
            self._set_status("finished", file=False)
            self.run_time_to_db()
            update_pipelines_listing(self.project, self.folder, self.job_name)

    def mark_aborted(self) -> None:
        """Set the status ``aborted`` (job table and file): the computation failed."""
        with pyiron_lock:
            self.refresh_job_status()
            self._set_status("aborted")

    def result_files(self) -> list[Path]:
        """The result's files where the job is now (in its working directory); a file missing
        there, or differing from the bytes in the job's file, is written there again first.

        Returns
        -------
        list of pathlib.Path
            The files, in the order they were stored (a fit: the potential file first).

        Raises
        ------
        DamagedJobError
            If the job's file is missing or cannot be read.
        """
        folder = Path(self.working_directory)
        with job_file(self.h5_file, self.job_name) as handle:
            group = handle[self.job_name]
            if "output/file_names" not in group:
                return []
            names = json.loads(group["output/file_names"][...].tobytes().decode("utf-8"))
            paths = []
            for k, name in enumerate(names):
                path = folder / name
                paths.append(path)
                if path.is_file() and path.stat().st_size == group[f"output/files/file_{k}"].size:
                    blob = group[f"output/files/file_{k}"][...].tobytes()
                    if path.read_bytes() == blob:
                        continue
                else:
                    blob = group[f"output/files/file_{k}"][...].tobytes()
                _write_atomically(path, blob)
        return paths

    def _before_generic_remove_child(self) -> None:
        super()._before_generic_remove_child()
        update_pipelines_listing(self.project, self.folder, self.job_name, removed=True)

    def validate_ready_to_run(self) -> None:
        raise NotImplementedError(
            f"{type(self).__name__} jobs are made and computed by "
            "assyst_nodes.project.fit_in_project / validate_in_project, not by run()"
        )


def _write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file beside it (readers never see a
    half-written file; two writers of the same bytes do not conflict)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    temporary.write_bytes(data)
    os.replace(temporary, path)


class AssystFit(AssystResult):
    """A fit of a potential (:func:`assyst_nodes.stages.fit.fit`), made by
    :func:`~assyst_nodes.project.fitting.fit_in_project`.

    ``input``: ``settings`` (readable) and ``settings_pickle`` (the fitting config and the
    reference energies), ``computed_with``, ``input_jobs`` (JSON: per input list, training
    then validation, the names of the jobs that made its structures, relative to the job's
    folder); the input uuids in ``input_structures``. ``output``: ``result`` (JSON of
    :meth:`~assyst_nodes.stages.fit.FitResult.to_dict`, its files relative to the working
    directory), ``potential_pickle`` (the potential's config), and the files: the potential
    file first, then the fitting code's logs and inputs.
    :func:`~assyst_nodes.project.fitting.potential_of` gives the potential where the job is
    now.
    """


class AssystSuite(AssystResult):
    """A validation suite labelled with a reference calculator
    (:func:`assyst_nodes.stages.validate.reference_suite`), made once per suite and reference
    by :func:`~assyst_nodes.project.validating.suite_reference_in_project` and shared by every
    validation against it. ``output``: ``reference_pickle`` (the pickled
    :class:`~assyst_nodes.stages.validate.SuiteReference`), ``result`` (a JSON summary).
    """


class AssystValidate(AssystResult):
    """A validation of a calculator against a reference suite
    (:func:`assyst_nodes.stages.validate.validate`), made by
    :func:`~assyst_nodes.project.validating.validate_in_project`. ``input``: ``calculator``,
    ``reference`` (their keys: the text of the configs, a fitted potential by its digest, not
    its path), ``suite`` and ``suite_pickle``, ``suite_job`` (the :class:`AssystSuite` job it
    compared with, by name). ``output``: ``result`` (JSON of
    :meth:`~assyst_nodes.stages.validate.Validation.to_dict`) and the figures (PNG files).
    """


RESULT_JOBS: Final[dict[str, type[AssystResult]]] = {
    "fit": AssystFit,
    "suite": AssystSuite,
    "validate": AssystValidate,
}
"""The job classes of fits, labelled suites and validations, by kind."""

for _name in ["AssystResult", *(cls.__name__ for cls in RESULT_JOBS.values())]:
    pyiron_base.JOB_CLASS_DICT[_name] = __name__
