"""What a stage job's input and output hold: the settings (their text, their reuse key, their
pickle), the references to the jobs whose output is the input (by name, never by numeric id),
the checks that an input still holds what the job was made from, and the ``job.input`` /
``job.output`` objects of :mod:`assyst_nodes.project.jobs`.
"""

from __future__ import annotations

import base64
import inspect
import os
import pickle
import posixpath
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import numpy as np
from ase import Atoms

from assyst_nodes.reports import StageReport

from .database import pyiron_base
from .layout import report_from_json

if TYPE_CHECKING:
    from .jobs import AssystStage

__all__ = [
    "CHOOSING_SETTINGS",
    "POINT_SETTINGS",
    "InputChangedError",
    "JobInput",
    "MissingInputError",
    "OldJobId",
    "Source",
    "StageInput",
    "StageOutput",
    "StoredList",
    "job_h5",
    "job_stamp",
    "key_settings",
    "pickled_settings",
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

CHOOSING_SETTINGS: Final = ("duplicates", "isolated")
"""Settings of the label stage that only choose which structures are labelled (equivalent
ones once, and which isolated atoms): a structure's label does not depend on them, so labels
are reused across them."""


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
        which grid points are drawn); for ``label`` those in :data:`CHOOSING_SETTINGS` do not
        count.
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
    elif stage == "label":
        settings = {k: v for k, v in settings.items() if k not in CHOOSING_SETTINGS}
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
    only; the stored input uuids check that the id still names the right job).

    Parameters
    ----------
    job_id : int
        The id in the job table the job was made in (pyiron renumbers ids on unpack).
    """

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


def _is_stage_job(value: Any) -> bool:
    """Whether ``value`` is a stage job (an :class:`~assyst_nodes.project.jobs.AssystStage`,
    told by the stage name its class has, as that module builds on this one)."""
    return isinstance(value, pyiron_base.GenericJob) and hasattr(type(value), "stage_name")


def _as_source(value: Any, project: Any, folder: Path) -> Source:
    """One input list from a stage job, its id, its name (or a path ``group/name`` relative to
    ``folder``, the folder of the job that takes it) or a list of Atoms."""
    if _is_stage_job(value):
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
