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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from time import perf_counter
from typing import Any, Final

import numpy as np
from ase import Atoms
from ase.formula import Formula

from assyst_nodes.lineage import UUID
from assyst_nodes.reports import StageReport

from ..provenance import computed_with
from . import pyiron_internals
from .database import (
    BoundProject,
    ForeignJobError,
    bound_project,
    database_identity,
    embedded_root,
    pyiron_base,
    pyiron_lock,
    quiet,
    user_config_present,
)
from .index import Index, Stored, settings_key
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
    report_from_json,
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
from .store import read_structures

__all__ = [
    "STAGE_JOBS",
    "USABLE_STATUSES",
    "AssystCombine",
    "AssystFilter",
    "AssystJob",
    "AssystLabel",
    "AssystPerturb",
    "AssystPipeline",
    "AssystRelax",
    "AssystSample",
    "AssystStage",
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

_NOT_SETTINGS: Final = frozenset(
    {"structures", "first", "second", "third", "fourth", "workers", "executor", "chunksize",
     "progress", "recorder"}
)
_MAX_INPUTS: Final = 4  # inputs of the combine node


def settings_repr(settings: Mapping[str, Any]) -> str:
    """Readable, deterministic text of ``settings``: ``key=repr(value)`` sorted by key.

    Parameters
    ----------
    settings : mapping
        Setting name to value (a stage node's keyword arguments).

    Returns
    -------
    str
        ``key=repr(value)`` of each setting, sorted by key and joined by ``", "`` (``""`` for no
        settings); stored as a job's ``input/settings``.
    """
    return ", ".join(f"{key}={settings[key]!r}" for key in sorted(settings))


POINT_SETTINGS: Final = ("dim", "seed", "tolerance")
"""What decides the crystal of one grid point of the sample stage (its seed also depends on
the point itself); formulas, groups, cap, order and time limit only choose which points are
drawn."""


def key_settings(
    stage: str, settings: Mapping[str, Any], versions: Mapping[str, str] | None = None
) -> str:
    """The text of what decides what ``stage`` makes of one input.

    One input is a structure, or a grid point for ``sample``. The text is hashed into the jobs'
    key in the structure index (:func:`~assyst_nodes.project.index.settings_key`): jobs of one
    key give a structure the same outcome.

    Parameters
    ----------
    stage : str
        The stage (``sample``, ``relax``, ``label``, ``perturb``, ``filter``, ``combine``). For
        ``sample`` only the settings in :data:`POINT_SETTINGS` count (the others only choose
        which grid points are drawn).
    settings : mapping
        The stage's settings (its node's keyword arguments).
    versions : mapping of str to str, optional
        Distribution name to version of what computed it
        (:func:`~assyst_nodes.provenance.computed_with`). Default: ``None`` (not known: the
        key is the settings' alone, as for jobs of versions before 0.3, which recorded no
        versions).

    Returns
    -------
    str
        :func:`settings_repr` of the settings that count, followed by
        ``"; computed with "`` and :func:`versions_text` where ``versions`` are given.
    """
    if stage == "sample":
        settings = {k: v for k, v in settings.items() if k in POINT_SETTINGS}
    text = settings_repr(settings)
    return f"{text}; computed with {versions_text(versions)}" if versions else text


def versions_text(versions: Mapping[str, str]) -> str:
    """``name==version`` of each distribution, sorted by name.

    Parameters
    ----------
    versions : mapping of str to str
        Distribution name to version, as :func:`~assyst_nodes.provenance.computed_with` gives.

    Returns
    -------
    str
        ``name==version`` entries joined by ``", "``: the stored form of
        :func:`~assyst_nodes.provenance.computed_with`.
    """
    return ", ".join(f"{name}=={versions[name]}" for name in sorted(versions))


def pickled_settings(settings: Mapping[str, Any]) -> str:
    """Base64 of the pickled settings, as a job stores them (``input/settings_pickle``).

    Parameters
    ----------
    settings : mapping
        Setting name to value (a stage node's keyword arguments).

    Returns
    -------
    str
        Base64 (ASCII) of the pickled ``dict(settings)``.

    Raises
    ------
    TypeError
        Naming each setting that cannot be pickled (a project could not load it again, nor
        compute the job again); the message suggests configs (e.g. ``EMT()``,
        ``ImportedCalculator('module:Name', {...})``) instead of live objects.
    """
    try:
        return base64.b64encode(pickle.dumps(dict(settings))).decode()
    except Exception:
        bad = []
        for key, value in settings.items():
            try:
                pickle.dumps(value)
            except Exception as error:
                bad.append(f"{key}={value!r} ({type(error).__name__}: {error})")
        raise TypeError(
            "a project stores a stage's settings so it can load and compute the job again, "
            f"but these cannot be pickled: {'; '.join(bad) or dict(settings)!r}; use configs "
            "(e.g. EMT(), ImportedCalculator('module:Name', {...})) instead of live objects"
        ) from None


def _stage_function(stage: str) -> Callable[..., Any] | None:
    """The node-layer function of ``stage`` (None for a stage without one); imported here, as
    the node layer is only needed to run a stage."""
    from assyst_nodes.nodes import stages

    return {
        "sample": stages.sample,
        "relax": stages.relax,
        "label": stages.label,
        "perturb": stages.perturb,
        "filter": stages.filter_structures,
        "combine": stages.combine,
    }.get(stage)


def _stage_defaults(stage: str) -> dict[str, Any] | None:
    """The settings of ``stage`` with their defaults (``inspect.Parameter.empty`` where one is
    required); None for a stage without a node function (then any settings are accepted)."""
    function = _stage_function(stage)
    if function is None:
        return None
    return {
        name: parameter.default
        for name, parameter in inspect.signature(function).parameters.items()
        if name not in _NOT_SETTINGS
    }


def job_h5(row: Mapping[str, Any]) -> Path:
    """The HDF5 file of the job of job-table ``row``.

    Parameters
    ----------
    row : mapping
        A job-table row: its ``projectpath`` (pyiron's root path; empty or ``None`` where the
        ``project`` column holds the absolute folder), ``project`` and ``job`` columns.

    Returns
    -------
    pathlib.Path
        ``<projectpath>/<project>/<job>.h5``.
    """
    folder = Path(row.get("projectpath") or "/", row["project"])
    return folder / f"{row['job']}.h5"


class StoredList(int):
    """An input list stored in the job's own file (its position among the stored lists), not
    read yet."""

    def __repr__(self) -> str:
        return f"StoredList({int(self)})"


@dataclass(frozen=True)
class JobInput:
    """An input list that is the output of stage job ``name`` in ``folder``.

    Names and relative folders survive ``pack``/``unpack``, ``copy_to``, ``cp -r`` and ``mv``,
    which pyiron's numeric ids do not. ``str()`` gives ``folder/name`` (``name`` alone for the
    same folder), the form :meth:`parse` reads and ``input/input_jobs`` stores.

    Parameters
    ----------
    name : str
        The name of the stage job whose output the list is.
    folder : str, default ""
        Its folder: a POSIX path relative to the folder of the job that takes it (``""`` for
        the same folder).
    """

    name: str
    folder: str = ""

    def __str__(self) -> str:
        return posixpath.join(self.folder, self.name) if self.folder else self.name

    @classmethod
    def parse(cls, text: str) -> JobInput:
        """The reference written as ``str(reference)``.

        Parameters
        ----------
        text : str
            ``name`` or ``folder/name`` (a POSIX path relative to the taking job's folder).

        Returns
        -------
        JobInput
        """
        folder, name = posixpath.split(text)
        return cls(name, folder)


@dataclass(frozen=True)
class OldJobId:
    """An input list referenced by numeric job id, as versions before 0.3 stored them (read
    only; the stored input uuids check that the id still names the right job)."""

    job_id: int


Source = JobInput | list[Atoms] | StoredList | OldJobId
"""Where one input list comes from: a stage job's output, the structures themselves, a
:class:`StoredList` of a loaded job, or an :class:`OldJobId` of a job of an older version."""


def _source_text(source: Source) -> str:
    """How ``input/input_jobs`` stores a source: the reference's path, ``id:<n>`` for a job
    of an older version referenced by id, ``""`` for a list stored in the job."""
    if isinstance(source, JobInput):
        return str(source)
    if isinstance(source, OldJobId):
        return f"id:{source.job_id}"
    return ""


def _parse_source(text: str, positions: Any) -> Source:
    """The source :func:`_source_text` wrote (``positions`` numbers the stored lists)."""
    if not text:
        return StoredList(next(positions))
    if text.startswith("id:"):
        return OldJobId(int(text[3:]))
    return JobInput.parse(text)


class InputChangedError(ValueError):
    """A job's input job no longer holds the structures the job was made from (it was removed
    and made again with other settings, or another job took its name)."""


class MissingInputError(ValueError):
    """A job's input job is not in the job table (removed, or not copied along)."""


def job_stamp(job_id: int, file: str | os.PathLike[str]) -> str:
    """What the structure index compares to know a job unchanged since it was indexed.

    A job removed and made again under its name has a new file; one written, truncated or
    deleted since is indexed again, which reads it: a damaged file is then reported, not
    listed.

    Parameters
    ----------
    job_id : int
        The job's id in the job table (``unpack`` renumbers).
    file : str or os.PathLike
        The job's HDF5 file.

    Returns
    -------
    str
        ``<id>|<size in bytes>|<modification time in ns>``, or ``<id>|missing`` where the file
        cannot be read (``stat`` fails).
    """
    try:
        stat = os.stat(file)
        written = f"{stat.st_size}|{stat.st_mtime_ns}"
    except OSError:
        written = "missing"
    return f"{int(job_id)}|{written}"


def _relative(folder: str | Path, start: str | Path) -> str:
    """``folder`` relative to ``start`` as a POSIX path ("" for the same folder)."""
    relative = os.path.relpath(os.path.abspath(folder), os.path.abspath(start))
    return "" if relative == "." else Path(relative).as_posix()


def _as_source(value: Any, project: Any, folder: Path) -> Source:
    """One input list from a stage job, its id, its name (or a path ``group/name`` relative to
    ``folder``, the folder of the job that takes it) or a list of Atoms."""
    if isinstance(value, AssystStage):
        if value.job_id is None:
            raise ValueError(f"input job {value.job_name} has not been saved or run yet")
        return JobInput(value.job_name, _relative(value.folder, folder))
    if isinstance(value, JobInput):
        return value
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        row = project.db.get_item_by_id(int(value))
        if row is None:
            raise ValueError(f"no job with id {int(value)} in the job table of {folder}")
        return JobInput(str(row["job"]), _relative(job_h5(row).parent, folder))
    if isinstance(value, str):
        reference = JobInput.parse(value)
        where = posixpath.normpath(posixpath.join(project.project_path, reference.folder)) + "/"
        if not project.db.get_items_dict({"job": reference.name, "project": where}):
            raise ValueError(f"no job named {value!r} in project {project.path}")
        return reference
    if isinstance(value, Atoms):
        return [value]
    if isinstance(value, (list, tuple)) and all(isinstance(a, Atoms) for a in value):
        return list(value)
    raise TypeError(
        "input structures must be a stage job, its id or name, or a list of ase.Atoms; "
        f"got {type(value).__name__}"
    )


class StageInput:
    """Input of a stage job: the stage node's keyword arguments, and ``structures``.

    Read and set as attributes or items (``job.input.time_limit = 600``,
    ``job.input["time_limit"]``). Only the stage's own settings can be set (an unknown name
    raises ``AttributeError`` naming the valid ones); one not set reads as the node's default
    and is not passed to the node (reading a required one not set raises ``AttributeError``).
    ``structures``: where the input comes from; one stage job, a job id or name (or a path
    ``group/name`` relative to the job's folder), or a list of ``ase.Atoms``; for ``combine``
    a list of up to four of those (more raise ``ValueError``). A job not saved yet, an id or
    name not in the job table raise ``ValueError``, anything else ``TypeError``.

    Made by the job; users set ``job.input``, they do not make one.

    Parameters
    ----------
    stage : str
        The stage (``sample``, ``relax``, ``label``, ``perturb``, ``filter``, ``combine``;
        ``pipeline`` for :class:`AssystPipeline`).
    defaults : mapping or None
        The settings that can be set, with their defaults (``inspect.Parameter.empty`` for a
        required one); ``None`` accepts any setting (a stage without a node function).
    """

    def __init__(self, stage: str, defaults: Mapping[str, Any] | None) -> None:
        self.__dict__["_stage"] = stage
        self.__dict__["_defaults"] = None if defaults is None else dict(defaults)
        self.__dict__["_values"] = {}
        self.__dict__["_sources"] = []
        self.__dict__["_computed_with"] = {}  # versions that compute the job (provenance)
        self.__dict__["_project"] = None  # the job's project and folder (set by the job)
        self.__dict__["_folder"] = None

    def _valid(self) -> str:
        return ", ".join(self.keys())

    @property
    def stage(self) -> str:
        """The stage this input is for (read-only)."""
        return str(self.__dict__["_stage"])

    def __getattr__(self, key: str) -> Any:
        if key.startswith("__"):
            raise AttributeError(key)
        values, defaults = self.__dict__["_values"], self.__dict__["_defaults"] or {}
        if key in values:
            return values[key]
        if key in defaults and defaults[key] is not inspect.Parameter.empty:
            return defaults[key]
        if key in defaults:
            raise AttributeError(f"{self._stage} job input {key!r} is required and not set")
        raise AttributeError(f"{self._stage} job input has no {key!r}; valid: {self._valid()}")

    def __setattr__(self, key: str, value: Any) -> None:
        defaults = self._defaults
        if key == "structures":
            self._set_sources(value)
        elif defaults is None or key in defaults:
            self._values[key] = value
        else:
            raise AttributeError(
                f"{self._stage} job input has no {key!r}; valid: {self._valid()}"
            )

    def __getitem__(self, key: str) -> Any:
        return getattr(self, key)

    def __setitem__(self, key: str, value: Any) -> None:
        setattr(self, key, value)

    def keys(self) -> list[str]:
        """The settings' names and ``structures``."""
        return [*(self._defaults or self._values), "structures"]

    def __dir__(self) -> list[str]:
        return [*super().__dir__(), *self.keys()]

    def __repr__(self) -> str:
        sources = [
            f"<{len(s)} structures>" if isinstance(s, list) else str(s) for s in self._sources
        ]
        return f"{self._stage} input: {settings_repr(self.kwargs(check=False))}; {sources}"

    @property
    def structures(self) -> list[Source]:
        """The input lists' sources: :class:`JobInput` references to stage jobs, or lists of
        structures (a loaded job's stored lists are :class:`StoredList` positions until
        read)."""
        return list(self._sources)

    def _set_sources(self, value: Any) -> None:
        project, folder = self.__dict__["_project"], self.__dict__["_folder"]
        if self._stage == "combine" and isinstance(value, (list, tuple)) and value and not all(
            isinstance(a, Atoms) for a in value
        ):
            if len(value) > _MAX_INPUTS:
                raise ValueError(f"combine takes at most {_MAX_INPUTS} inputs, got {len(value)}")
            sources = [_as_source(v, project, folder) for v in value]
        elif value is None:
            sources = []
        else:
            sources = [_as_source(value, project, folder)]
        self.__dict__["_sources"] = sources

    def kwargs(self, check: bool = True) -> dict[str, Any]:
        """The settings set, as keyword arguments of the stage node.

        Parameters
        ----------
        check : bool, default True
            Raise ``ValueError`` naming each required setting not set.

        Returns
        -------
        dict
            The settings set (those not set are left out: the node uses its defaults).

        Raises
        ------
        ValueError
            With ``check``, where a required setting is not set.
        """
        defaults = self._defaults or {}
        missing = [
            k for k, v in defaults.items() if v is inspect.Parameter.empty and k not in self._values
        ]
        if check and missing:
            raise ValueError(
                f"{self._stage} job input {', '.join(missing)} is required and not set"
            )
        return dict(self._values)


class StageOutput:
    """Output of a stage job, read from its file on first use.

    Attributes: ``structures`` (list of ``ase.Atoms``), ``report``
    (:class:`~assyst_nodes.reports.StageReport`; ``None`` before the job ran), ``n_structures``,
    ``n_lost`` (structures lost to errors), ``seconds_compute`` and ``seconds_store`` (wall
    times, s), ``executor`` and ``slurm_job_ids`` (where it ran). Any other name raises
    ``AttributeError`` naming those there are.

    Made by the job (``job.output``), not by users.

    Parameters
    ----------
    job : AssystStage
        The stage job whose output this is.
    """

    def __init__(self, job: AssystStage) -> None:
        self._job = job
        self.values: dict[str, Any] = {}

    @property
    def structures(self) -> list[Atoms]:
        return self._job.structures()

    @property
    def report(self) -> StageReport | None:
        text = self.values.get("report")
        return None if not text else report_from_json(str(text))

    def __getattr__(self, key: str) -> Any:
        values = self.__dict__.get("values", {})
        if key in values:
            return values[key]
        raise AttributeError(
            f"stage job output has no {key!r} (has structures, report, {', '.join(values)})"
        )

    def __dir__(self) -> list[str]:
        return [*super().__dir__(), *self.values]

    def __repr__(self) -> str:
        shown = {k: v for k, v in self.values.items() if k != "report"}
        return f"stage job output {shown}"


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
