"""pyiron_base job classes: one per stage (its class name is the job table's ``hamilton``), and
:class:`AssystPipeline`, which runs the whole ASSYST macro with its stage jobs as children.

They are ordinary pyiron jobs::

    pr = open_project("cu_ag")                    # or any pyiron Project (group) of the user
    job = pr.create.job.AssystRelax("relax_cu")
    job.input.settings = VolumeRelax(calculator=EMT())
    job.input.structures = pr.load("sample_cu")   # a stage job, its id or name, or list[ase.Atoms]
    job.server.cores = 2                          # worker processes of the stage
    job.run()                                     # or job.server.queue = "..." first: submitted
    job.output.structures                         # list[ase.Atoms]; job.output.report, ...
    job["output/structures/positions"]            # pyiron's accessors read the stored arrays

:class:`~assyst_nodes.project.recorder.ProjectRecorder` makes the same jobs when a node graph
runs into a project (named by a hash of stage, settings and inputs, so a rerun finds them).

``job.input`` holds the keyword arguments of the stage's node (``assyst_nodes.nodes.stages``;
e.g. ``settings`` and ``time_limit`` of ``relax``) and ``structures``, where the input comes
from. Layout of a stage job ``<name>`` in its project folder ``<folder>``::

    <folder>/<name>.h5
      /<name>/input/stage                  the stage name
      /<name>/input/settings               readable text of the settings (keys sorted)
      /<name>/input/settings_pickle        base64 of the pickled settings mapping
      /<name>/input/key_settings           the settings that decide a structure's outcome
                                           (:func:`key_settings`), hashed into the index key
      /<name>/input/input_job_ids          per input list: the job whose output it is, -1 if
                                           the list is stored in this job
      /<name>/input/input_sizes            length of each input list
      /<name>/input_structures/uuids       the input structures' uuids, lists concatenated
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
the job that produced the first input list; ``masterid`` the :class:`AssystPipeline` job.
"""

from __future__ import annotations

import base64
import inspect
import pickle
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from time import perf_counter
from typing import Any, Final

import numpy as np
from ase import Atoms
from ase.formula import Formula

from assyst_nodes.lineage import UUID
from assyst_nodes.reports import StageReport

from .database import pyiron_base, pyiron_lock, quiet
from .index import Index, Stored, settings_key
from .layout import (
    INPUT_LISTS,
    USABLE_STATUSES,
    DamagedJobError,
    delete_partial,
    job_file,
    read_input_uuids,
    read_output,
    read_partial,
    report_from_json,
    report_to_json,
    write_input_lists,
    write_input_uuids,
    write_output,
)
from .outcomes import outcomes_by_input, with_cache
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
    "StageInput",
    "StageOutput",
    "job_class",
    "job_h5",
    "key_settings",
    "settings_repr",
]

_NOT_SETTINGS: Final = frozenset(
    {"structures", "first", "second", "third", "fourth", "workers", "executor", "chunksize",
     "progress", "recorder"}
)
_MAX_INPUTS: Final = 4  # inputs of the combine node


def settings_repr(settings: Mapping[str, Any]) -> str:
    """Readable, deterministic text of ``settings``: ``key=repr(value)`` sorted by key."""
    return ", ".join(f"{key}={settings[key]!r}" for key in sorted(settings))


POINT_SETTINGS: Final = ("dim", "seed", "tolerance")
"""What decides the crystal of one grid point of the sample stage (its seed also depends on
the point itself); formulas, groups, cap, order and time limit only choose which points are
drawn."""


def key_settings(stage: str, settings: Mapping[str, Any]) -> str:
    """The text of the settings that decide what ``stage`` makes of one input (a structure, or
    a grid point for ``sample``: :data:`POINT_SETTINGS`), hashed into the jobs' key in the
    structure index (:func:`~assyst_nodes.project.index.settings_key`)."""
    if stage == "sample":
        settings = {k: v for k, v in settings.items() if k in POINT_SETTINGS}
    return settings_repr(settings)


def _pickled(settings: Mapping[str, Any]) -> str:
    """Base64 of the pickled settings, or '' if they cannot be pickled."""
    try:
        return base64.b64encode(pickle.dumps(dict(settings))).decode()
    except Exception:
        return ""


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
    """The HDF5 file of the job of job-table ``row``."""
    folder = Path(row.get("projectpath") or "/", row["project"])
    return folder / f"{row['job']}.h5"


class StoredList(int):
    """An input list stored in the job's own file (its position among the stored lists), not
    read yet."""

    def __repr__(self) -> str:
        return f"StoredList({int(self)})"


Source = int | list[Atoms]
"""Where one input list comes from: a job id, the structures themselves, or a
:class:`StoredList` of a loaded job."""


def _as_source(value: Any, project: Any) -> Source:
    """One input list from a stage job, its id, its name or a list of Atoms."""
    if isinstance(value, AssystStage):
        if value.job_id is None:
            raise ValueError(f"input job {value.job_name} has not been saved or run yet")
        return int(value.job_id)
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, str):
        job_id = project.get_job_id(value)
        if job_id is None:
            raise ValueError(f"no job named {value!r} in project {project.path}")
        return int(job_id)
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

    Only the stage's own settings can be set (an unknown name raises ``AttributeError`` naming
    the valid ones); one not set reads as the node's default and is not passed to the node.
    ``structures``: where the input comes from; one stage job, a job id or name, or a list of
    ``ase.Atoms``; for ``combine`` a list of up to four of those.
    """

    def __init__(self, stage: str, defaults: Mapping[str, Any] | None) -> None:
        self.__dict__["_stage"] = stage
        self.__dict__["_defaults"] = None if defaults is None else dict(defaults)
        self.__dict__["_values"] = {}
        self.__dict__["_sources"] = []
        self.__dict__["_project"] = None

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
        sources = [s if isinstance(s, int) else f"<{len(s)} structures>" for s in self._sources]
        return f"{self._stage} input: {settings_repr(self.kwargs(check=False))}; {sources}"

    @property
    def structures(self) -> list[Source]:
        """The input lists' sources: job ids, or lists of structures (a loaded job's stored
        lists are :class:`StoredList` positions until read)."""
        return list(self._sources)

    def _set_sources(self, value: Any) -> None:
        project = self.__dict__["_project"]
        if self._stage == "combine" and isinstance(value, (list, tuple)) and value and not all(
            isinstance(a, Atoms) for a in value
        ):
            if len(value) > _MAX_INPUTS:
                raise ValueError(f"combine takes at most {_MAX_INPUTS} inputs, got {len(value)}")
            sources = [_as_source(v, project) for v in value]
        elif value is None:
            sources = []
        else:
            sources = [_as_source(value, project)]
        self.__dict__["_sources"] = sources

    def kwargs(self, check: bool = True) -> dict[str, Any]:
        """The settings set, as keyword arguments of the stage node; with ``check``, a
        required one not set raises ``ValueError`` naming it."""
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
    """Output of a stage job, read from its file on first use: ``structures`` (list of Atoms),
    ``report`` (:class:`~assyst_nodes.reports.StageReport`), ``n_structures``, ``n_lost``
    (structures lost to errors), ``seconds_compute`` and ``seconds_store`` (s)."""

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
    """Base of the assyst job classes: pyiron removal also clears the folder's index."""

    def __init__(self, project: Any, job_name: str) -> None:
        super().__init__(project, job_name)
        self.__version__ = "0.2"

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
        return data

    def _check_if_input_should_be_written(self) -> bool:
        """No input files: the job runs in Python (no ``<name>_hdf5`` folder on save)."""
        return False

    def _before_generic_remove_child(self) -> None:
        """pyiron is removing this job (``remove_job``, ``remove_jobs``, ``remove``,
        ``job.remove()``): forget its index rows and lock file."""
        if self.job_id is not None:
            Index(self.folder).remove_job(int(self.job_id))
        (self.folder / ".locks" / f"{self.job_name}.lock").unlink(missing_ok=True)

    def _set_status(self, status: str) -> None:
        """Set the status in the job table and in the file."""
        setattr(self.status, status, True)
        self.project_hdf5["status"] = self.status.string


class AssystStage(AssystJob):
    """A stage run: input settings and structures, output structures, report and timings."""

    stage: str = ""

    def __init__(self, project: Any, job_name: str) -> None:
        super().__init__(project, job_name)
        self._input = StageInput(self.stage, _stage_defaults(self.stage) if self.stage else None)
        self._input.__dict__["_project"] = project
        self._output = StageOutput(self)

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
            "input/settings_pickle": _pickled(settings),
            "input/key_settings": key_settings(self.stage_name, settings),
            "input/input_job_ids": np.array(  # -1: a list stored in this job
                [-1 if isinstance(s, (list, StoredList)) else s for s in sources], dtype=np.int64
            ),
        }

    def _to_dict(self) -> dict[str, Any]:
        data = super()._to_dict()
        data.update(self._input_entries())
        return data

    def _from_dict(self, obj_dict: dict[str, Any], version: str | None = None) -> None:
        super()._from_dict(obj_dict, version)
        stored = obj_dict.get("input", {})
        stage = stored.get("stage")
        if stage and not self.stage:
            self._input.__dict__["_stage"] = str(stage)
        blob = stored.get("settings_pickle")
        if blob:
            try:
                values = pickle.loads(base64.b64decode(blob))
            except Exception as error:  # a class that no longer imports, ...
                raise DamagedJobError(self.job_name, self.h5_file, error) from error
            self._input.__dict__["_values"].update(values)
        ids = [int(i) for i in np.atleast_1d(stored.get("input_job_ids", []))]
        positions = iter(range(len(ids)))
        self._input.__dict__["_sources"] = [
            StoredList(next(positions)) if i < 0 else i for i in ids
        ]

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
            self.stage_name, key_settings(self.stage_name, self._input.kwargs(check=False))
        )

    def settings_object(self) -> dict[str, Any]:
        """The settings mapping the stage ran with (unpickled: trust the project you load)."""
        return self._input.kwargs(check=False)

    def input_uuids(self) -> list[list[str]]:
        """The uuids of each input list, in order (stored when the job finished)."""
        return read_input_uuids(self.h5_file, self.job_name)

    def input_structures(self) -> list[list[Atoms]]:
        """The input lists: read from the jobs that produced them, or from this job's file."""
        lists: list[list[Atoms]] = []
        for source in self._input.structures:
            if isinstance(source, list):
                lists.append(source)
            elif isinstance(source, StoredList):
                with job_file(self.h5_file, self.job_name) as handle:
                    group = handle[f"{self.job_name}/{INPUT_LISTS.format(int(source))}"]
                    lists.append(read_structures(group))
            else:
                row = self.project.db.get_item_by_id(source)
                if row is None:
                    raise ValueError(
                        f"job {self.job_name}: its input job {source} is not in the job table"
                    )
                lists.append(read_output(job_h5(row), str(row["job"]))[0])
        return lists

    def _materialize_stored_lists(self) -> None:
        """Read the input lists stored in this job's file into memory (before pyiron deletes
        the file, e.g. ``run(delete_existing_job=True)``, so a new save writes them again)."""
        sources = self._input.structures
        if not any(isinstance(s, StoredList) for s in sources) or not self.h5_file.exists():
            return
        lists = self.input_structures()
        self._input.__dict__["_sources"] = [
            lists[k] if isinstance(s, StoredList) else s for k, s in enumerate(sources)
        ]

    def remove_child(self) -> None:
        self._materialize_stored_lists()
        super().remove_child()

    # ---------------------------------------------------------------- running

    def validate_ready_to_run(self) -> None:
        """Check the input before pyiron saves the job (clear errors naming what is wrong)."""
        if _stage_function(self.stage) is None:
            raise NotImplementedError(
                f"{type(self).__name__} jobs have no stage function to run; they are records"
            )
        self._input.kwargs()  # required settings
        wanted = 0 if self.stage == "sample" else 1
        if len(self._input.structures) < wanted:
            raise ValueError(
                f"{self.job_name}: set job.input.structures (a stage job, its id or name, or a "
                "list of ase.Atoms) before running it"
            )

    def save(self) -> None:
        """Save as pyiron does, then store each input list given as structures."""
        self._materialize_stored_lists()
        first = next(iter(self._input.structures), None)
        if self.parent_id is None and isinstance(first, int) and not isinstance(first, StoredList):
            self.parent_id = first
        super().save()
        lists = [s for s in self._input.structures if isinstance(s, list)]
        if lists:
            write_input_lists(self.h5_file, self.job_name, lists)

    def run_static(self) -> None:
        """Compute the stage from ``job.input`` (with ``server.cores`` worker processes) and
        store the result (pyiron calls this on ``run()``, also in a queue's job)."""
        function = _stage_function(self.stage)
        if function is None:  # pragma: no cover - validate_ready_to_run refuses first
            raise NotImplementedError(f"{type(self).__name__} has no stage function")
        self._set_status("running")
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
        """Run ``compute`` and store its result in this (saved) job; a compute that raises
        marks the job ``aborted`` and re-raises."""
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
        """Write output, report and timings; set status, chemical formula and run time in the
        job table; index the structures."""
        start = perf_counter()
        report_json = report_to_json(report)
        uuids = [[str(a.info.get(UUID, "")) for a in s] for s in inputs]
        write_input_uuids(self.h5_file, self.job_name, uuids)
        write_output(self.h5_file, self.job_name, structures, report_json)
        delete_partial(self.h5_file, self.job_name)
        n_in = sum(len(s) for s in inputs) if inputs else report.n_in
        values = {
            "report": report_json,
            "n_structures": len(structures),
            "n_lost": report.n_lost,
            "seconds_compute": float(seconds_compute),
            "seconds_store": perf_counter() - start,
            "executor": str(report.execution.get("executor", "")),
            "slurm_job_ids": np.array(
                [int(i) for i in report.execution.get("slurm_job_ids", [])], dtype=np.int64
            ),
        }
        self._output.values = dict(values)
        with pyiron_lock:
            self.project_hdf5.write_dict({f"output/{k}": v for k, v in values.items()})
            self.refresh_job_status()  # pyiron's status object may hold an older connection
            formula = chemical_formula(structures or [a for s in inputs for a in s])
            if formula:
                self.project.db.item_update({"chemicalformula": formula}, self.job_id)
            self._set_status(status_of(report, n_in))
            self.run_time_to_db()
        if self.status.string in USABLE_STATUSES:
            stored = Stored(
                structures,
                [u for us in uuids for u in us],
                self.settings_key(),
                [(d.label, d.reason, d.detail) for d in report.drops],
            )
            Index(self.folder).add_job(int(self.job_id), self.job_name, self.stage_name, stored)


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


def job_class(stage: str) -> type[AssystStage]:
    """The job class of ``stage`` (:class:`AssystStage` for a stage without its own class)."""
    return STAGE_JOBS.get(stage, AssystStage)


class AssystPipeline(AssystJob):
    """One ASSYST pipeline run: the parent (``masterid``) of its stage jobs.

    Made by a :class:`~assyst_nodes.project.recorder.ProjectRecorder` with a ``pipeline`` name
    (then it only groups: ``input.pipeline`` holds the name, ``output.job_ids`` every stage job
    the run used, reused ones included), or by a user: ``pr.create.job.AssystPipeline("cu_ag")``
    with ``job.input`` holding the macro's inputs (``elements``, ``max_atoms``, ``calculator``,
    ... see :func:`assyst_nodes.nodes.assyst`); ``job.run()`` then runs the whole macro with
    ``server.cores`` workers, every stage a child job.
    """

    def __init__(self, project: Any, job_name: str) -> None:
        super().__init__(project, job_name)
        self._input = StageInput("pipeline", {**_macro_defaults(), "pipeline": None})
        self._output_values: dict[str, Any] = {"job_ids": np.zeros(0, np.int64)}

    @property
    def input(self) -> StageInput:
        return self._input

    @property
    def output(self) -> dict[str, Any]:
        return self._output_values

    def _to_dict(self) -> dict[str, Any]:
        data = super()._to_dict()
        settings = self._input.kwargs(check=False)
        data["input/settings"] = settings_repr(settings)
        data["input/settings_pickle"] = _pickled(settings)
        if "pipeline" in settings:
            data["input/pipeline"] = str(settings["pipeline"])
        data["output/job_ids"] = np.asarray(self._output_values["job_ids"], dtype=np.int64)
        return data

    def _from_dict(self, obj_dict: dict[str, Any], version: str | None = None) -> None:
        super()._from_dict(obj_dict, version)
        blob = obj_dict.get("input", {}).get("settings_pickle")
        if blob:
            self._input.__dict__["_values"].update(pickle.loads(base64.b64decode(blob)))

    def from_hdf(self, hdf: Any = None, group_name: str | None = None) -> None:
        super().from_hdf(hdf=hdf, group_name=group_name)
        if "output" in self.project_hdf5.list_groups():
            with self.project_hdf5.open("output") as output:
                self._output_values = {key: output[key] for key in output.list_nodes()}

    def add_job_ids(self, job_ids: Sequence[int]) -> None:
        """Append stage job ids the run used (each once) to ``output.job_ids`` and store it."""
        known = [int(i) for i in np.atleast_1d(self._output_values.get("job_ids", []))]
        new = [int(i) for i in job_ids if int(i) not in known]
        if not new:
            return
        self._output_values["job_ids"] = np.array(known + new, dtype=np.int64)
        self.project_hdf5.write_dict({"output/job_ids": self._output_values["job_ids"]})

    def validate_ready_to_run(self) -> None:
        settings = self._input.kwargs()
        if "pipeline" in settings:
            raise ValueError(
                f"{self.job_name} groups the stage jobs of the named pipeline "
                f"{settings['pipeline']!r}; it is not run itself"
            )

    def run_static(self) -> None:
        """Run the ASSYST macro with ``job.input`` into this job's project, every stage a
        child job (``masterid`` = this job); ``output.job_ids`` lists them."""
        import pyiron_workflow as pwf

        from assyst_nodes.nodes import assyst

        from .recorder import ProjectRecorder

        self._set_status("running")
        settings = {k: v for k, v in self._input.kwargs().items() if k != "pipeline"}
        recorder = ProjectRecorder(self.project, master_id=int(self.job_id))
        try:
            with quiet():
                pwf.run(assyst, **settings, workers=max(1, int(self.server.cores or 1)),
                        progress=False, recorder=recorder)
        except BaseException:
            self._set_status("aborted")
            raise
        with pyiron_lock:
            self.refresh_job_status()
            self._set_status("finished")
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
