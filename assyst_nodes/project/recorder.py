"""``ProjectRecorder``: records stage runs as pyiron_base jobs in a project, and reuses them.

One stage run = one job named ``<stage>_<12 hex>``, the hex being a hash of (stage, ``repr`` of
the settings sorted by key, the input uuids in order). Settings must have a deterministic
``repr`` (the package's frozen configs do) for a rerun to find the job again.

``record`` holds an exclusive lock on ``<folder>/.locks/<job name>.lock`` (``fcntl.flock``, freed
by the OS when a process dies) while it looks the job up, computes and stores. So:

* a usable job (``finished``, or ``warning``: some structures were lost to errors) is reused
  (structures and report read back, ``compute`` not called, no row added); if its stored output
  cannot be read (file deleted or damaged) it is computed again, with a ``RuntimeWarning``;
  one that lost structures to their workers (``worker_lost``) is computed again;
* a job in any other status (created, running, aborted, ...) is left over by a process that
  died or failed, since no live process holds its lock: it is deleted (job-table row, HDF5 file,
  index rows) and computed again under the same name, never duplicated;
* the per-structure stages (relax, label: their ``compute`` takes a ``cache``) compute only
  the structures that neither the job being redone (its finished chunks, or the outcomes of a
  run that lost some structures to their workers) nor any finished job of the same stage and
  settings in the folder holds (:mod:`assyst_nodes.project.outcomes`);
* two processes asking for the same job wait for each other; the second one reuses the first's
  result; processes recording different jobs run in parallel;
* a process killed at any point (SIGKILL; power loss aside: nothing is fsynced) leaves jobs
  that the next run finds unfinished and computes again, or finished ones that the folder's
  index takes in when it is next reconciled; :func:`stale_jobs` lists (and removes) the
  unfinished ones no live process owns;
* a job file that the job table has no row for is deleted before the job is made again only
  if it was written from this job table (a process killed between writing it and adding its
  row); one written from another job table raises
  :class:`~assyst_nodes.project.database.ForeignJobError` and stays as it is.

A recorder with a ``pipeline`` name lists every job the run used, by name, in the pipeline job
``pipeline_<name>_<8 hex>`` of the folder, and sets that job's status to the aggregate of its
stage jobs' (:mod:`assyst_nodes.project.pipelines`). Stage jobs have no pyiron master: several
pipelines may use one.

``flock`` needs a local or lock-aware file system (NFS with lockd works; some network file
systems ignore it) and is not available on Windows, where recording runs without the lock.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ase import Atoms

from assyst_nodes.reports import RETRYABLE_REASONS, StageReport

from ..provenance import computed_with
from ..stages.relax import Outcome
from .binding import BoundProject
from .database import project_folder, pyiron_lock, quiet
from .index import Index
from .job_slots import _discard, _locked, _row, _uuids, job_name
from .jobs import (
    USABLE_STATUSES,
    AssystPipeline,
    AssystStage,
    JobInput,
    job_class,
    job_stamp,
    pickled_settings,
    settings_repr,
)
from .layout import DamagedJobError, read_for_index, read_output, read_partial
from .operations import open_project
from .outcomes import outcomes_by_input, with_cache
from .pipelines import PIPELINE_CLASS, add_jobs, listed_jobs, pipeline_job_name, pipeline_state

if TYPE_CHECKING:
    from ..calculators import CalculatorConfig
    from ..stages.fit import FitResult, FitSettings
    from ..stages.validate import Suite, Validation

__all__ = ["ProjectRecorder", "job_name", "settings_repr", "stale_jobs"]


def stale_jobs(
    project_or_path: Any, remove: bool = False, use_user_config: bool | None = None
) -> list[str]:
    """Names of the stage jobs a dead or failed process left unfinished in this project folder.

    Such a job has any status but ``finished``/``warning`` (``running``, ``created``,
    ``aborted``, ...) while no live process records it (its lock is free). A pipeline that asks
    for such a job computes it again. Pipeline jobs are never stale: their status is their
    stage jobs'.

    Parameters
    ----------
    project_or_path : str, os.PathLike or object
        A folder, a pyiron ``Project`` or a :class:`ProjectRecorder`; only the jobs of this
        folder count, not those of its sub-projects.
    remove : bool, default False
        Whether they are deleted now (table row, HDF5 file, index rows), each under its lock.
    use_user_config : bool, optional
        Which database a folder opens on (see
        :func:`~assyst_nodes.project.operations.open_project`): ``None`` (default) the user's
        pyiron configuration if there is one, else an embedded SQLite file; ``True``/``False``
        force either. A folder inside an embedded root always uses that root's.

    Returns
    -------
    list of str
        The names of the stale jobs (removed with ``remove``).
    """
    with pyiron_lock:
        project = open_project(project_or_path, use_user_config)
        table = project.job_table(recursive=False, auto_refresh_job_status=False)
    folder = Path(project.path)
    if table.empty:
        return []
    names = [
        str(name)
        for name, status, kind in zip(
            table["job"], table["status"], table["hamilton"], strict=True
        )
        if status not in USABLE_STATUSES and kind != PIPELINE_CLASS
    ]
    stale = []
    for name in names:
        with _locked(folder, name, blocking=False) as free:
            if not free:
                continue
            with pyiron_lock:
                row = _row(project, name)
                if row is None or row["status"] in USABLE_STATUSES:  # finished meanwhile
                    continue
                stale.append(name)
                if remove:
                    _discard(project, folder, name, row)
    return stale


@dataclass(frozen=True)
class ProjectRecorder:
    """Records stage runs into a pyiron project (see the module docstring).

    Plain fields: picklable, hashable.

    Parameters
    ----------
    path : str, os.PathLike or Project
        The project folder, or a pyiron ``Project`` (any group of the user's project; it is
        kept as its path and database kind).
    pipeline : str, optional
        Name of an :class:`~assyst_nodes.project.jobs.AssystPipeline` job that is made on
        first use and lists every job the run used. Default: none (no pipeline job).
    use_user_config : bool, optional
        ``None`` (default) uses the user's pyiron configuration if there is one, else an
        embedded SQLite database (see :func:`~assyst_nodes.project.operations.open_project`; a
        folder inside an embedded root always uses that root's); ``True``/``False`` force
        either. With a :class:`~assyst_nodes.project.binding.BoundProject` as ``path`` (as
        :func:`~assyst_nodes.project.operations.open_project` gives), ``None`` takes its
        database kind.
    pipeline_job : str, optional
        The name of an existing pipeline job of the folder to list the jobs in instead (a
        pipeline job that runs the macro itself). Default: none.

    Raises
    ------
    TypeError
        If ``path`` is neither a folder (str or os.PathLike) nor a pyiron ``Project``.
    ValueError
        If both ``pipeline`` and ``pipeline_job`` are given.
    """

    path: str
    pipeline: str | None = None
    use_user_config: bool | None = None
    pipeline_job: str | None = None

    def __post_init__(self) -> None:
        path = self.path
        if isinstance(path, BoundProject) and self.use_user_config is None:
            object.__setattr__(self, "use_user_config", path.database_kind == "user")
        path = getattr(path, "path", path)
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(
                "ProjectRecorder takes a folder (str or os.PathLike) or a pyiron Project, got "
                f"{type(self.path).__name__}"
            )
        object.__setattr__(self, "path", os.fspath(path))
        if self.pipeline is not None and self.pipeline_job is not None:
            raise ValueError("give ProjectRecorder a pipeline name or a pipeline_job, not both")

    def project(self) -> BoundProject:
        """The pyiron ``Project`` of the folder, bound to its database."""
        return open_project(self.path, self.use_user_config)

    def record(
        self,
        stage: str,
        settings: Mapping[str, Any],
        inputs: Sequence[Sequence[Atoms]],
        compute: Callable[[], tuple[list[Atoms], StageReport]],
    ) -> tuple[list[Atoms], StageReport]:
        """The stored result of this run if it is usable, else ``compute()``, stored.

        pyiron is used under :data:`~assyst_nodes.project.database.pyiron_lock`; ``compute``
        runs outside it: threads may record at once.
        """
        folder = project_folder(self.path)
        pickled_settings(settings)  # settings a project could not load again are refused now
        versions = computed_with(stage, settings)
        name = job_name(stage, settings, inputs, versions)
        with _locked(folder, name):
            with pyiron_lock:
                project = self.project()
                self._pipeline(project, folder)  # made on first use, before the run's jobs
                row = _row(project, name)
                stored, carried = self._stored(project, folder, row, stage)
                if stored is not None:
                    self._note(project, folder, [name])
                    return stored
                _discard(project, folder, name, row)
                job = self._create(project, folder, name, stage, settings, inputs, versions)
                self._note(project, folder, [name])
            compute = with_cache(compute, job, carried)
            try:
                return job.compute_and_store(compute, inputs)
            finally:
                with pyiron_lock:
                    self._note(project, folder, [])

    def _stored(
        self, project: Any, folder: Path, row: dict[str, Any] | None, stage: str
    ) -> tuple[tuple[list[Atoms], StageReport] | None, dict[str, Outcome]]:
        """What job ``row`` (if any) holds: its stored output if it is usable and lost nothing
        that a rerun may get (then it is indexed if the index lacks it), else the outcomes by
        input uuid it already has (a run with structures lost to their workers, or an
        interrupted run's finished chunks) to carry over."""
        if row is None:
            return None, {}
        name = str(row["job"])
        file = folder / f"{name}.h5"
        if row["status"] not in USABLE_STATUSES:  # left by a process that died or failed
            try:
                return None, outcomes_by_input(*read_partial(file, name))
            except DamagedJobError:
                return None, {}
        try:
            structures, report = read_output(file, name)
            index = Index(folder)
            stamp = job_stamp(int(row["id"]), file)
            if index.stamp_of(name) != stamp:  # its process was killed before indexing it
                index.add_job(name, int(row["id"]), stamp, stage, read_for_index(file, name))
        except DamagedJobError as error:
            warnings.warn(
                f"stored output of finished job {name} in {folder} cannot be read "
                f"({error}); computing it again",
                RuntimeWarning,
                stacklevel=4,
            )
            return None, {}
        if any(drop.reason in RETRYABLE_REASONS for drop in report.drops):
            return None, outcomes_by_input(structures, report.drops)
        return (structures, report), {}

    def _pipeline(self, project: Any, folder: Path) -> str | None:
        """The name of the pipeline job that lists the run's jobs (made on first use, with the
        pipeline name); None without one."""
        if self.pipeline_job is not None:
            if _row(project, self.pipeline_job) is None:
                raise ValueError(
                    f"pipeline job {self.pipeline_job} is not in the job table of {folder}"
                )
            return self.pipeline_job
        if self.pipeline is None:
            return None
        name = pipeline_job_name(self.pipeline)
        with _locked(folder, name):
            row = _row(project, name)
            if row is not None and (folder / f"{name}.h5").exists():
                return name
            # none, or one whose file is gone (a process killed while making it): make it
            _discard(project, folder, name, row)
            job = project.create_job(AssystPipeline, name)
            job.input.pipeline = self.pipeline
            with quiet():
                job.save()
            job._set_status("finished")
            return name

    def _note(self, project: Any, folder: Path, names: Sequence[str]) -> None:
        """List stage jobs ``names`` in the pipeline job (if there is one) and set its status
        to the aggregate of its stage jobs' (left to a pipeline job that runs the macro
        itself)."""
        pipeline = self._pipeline(project, folder)
        if pipeline is None:
            return
        file = folder / f"{pipeline}.h5"
        with _locked(folder, pipeline):
            listed = add_jobs(file, pipeline, names) if names else None
            if self.pipeline_job is not None:
                return
            if listed is None:
                listed = listed_jobs(file, pipeline) or []
            status, _, _ = pipeline_state(project, listed)
            row = _row(project, pipeline)
            if row is not None and row["status"] != status:
                project.db.item_update({"status": status}, int(row["id"]))

    def record_fit(
        self,
        structures: Sequence[Atoms],
        settings: FitSettings,
        validation: Sequence[Atoms] = (),
        reference_energies: Mapping[str, float] | None = None,
        executor: Executor | None = None,
    ) -> FitResult:
        """Fit a potential into a job of this project, or reuse an equal fit's job
        (:func:`~assyst_nodes.project.fitting.fit_in_project`); the job is listed in the
        pipeline job, if there is one.

        Parameters
        ----------
        structures : sequence of ase.Atoms
            Labelled training structures (with the isolated atoms).
        settings : FitSettings
            The fitting config (``LinearACE()``, ``PacemakerACE()``, ``MACE()``).
        validation : sequence of ase.Atoms, optional
            Labelled structures held out from the fit. Default: none.
        reference_energies : mapping of str to float, optional
            The isolated atoms' energies (eV). Default: those among ``structures``.
        executor : concurrent.futures.Executor, optional
            Where the fit itself runs, as one task. Default: ``None``, this process.

        Returns
        -------
        FitResult
            The potential (its path the fit job's file where the job is now), errors
            (meV/atom, meV/Å), reference energies, files and time.
        """
        from .fitting import _fit_in_project

        result, name = _fit_in_project(
            self, structures, settings, validation, reference_energies, executor
        )
        self._note_jobs([name])
        return result

    def record_validation(
        self, calculator: CalculatorConfig, reference: CalculatorConfig, suite: Suite
    ) -> Validation:
        """Validate ``calculator`` against ``reference`` on ``suite`` in a job of this project,
        or reuse an equal validation's job
        (:func:`~assyst_nodes.project.validating.validate_in_project`); the validation job and
        the labelled suite's job are listed in the pipeline job, if there is one.

        Parameters
        ----------
        calculator : CalculatorConfig
            The calculator under test (e.g. a fitted potential).
        reference : CalculatorConfig
            The reference calculator.
        suite : Suite
            What the validation suite holds.

        Returns
        -------
        Validation
            Errors (meV/atom, meV/Å) and properties of ``calculator`` against ``reference``.
        """
        from .validating import _validate_in_project

        validation, names = _validate_in_project(self, calculator, reference, suite)
        self._note_jobs(names)
        return validation

    def _note_jobs(self, names: Sequence[str]) -> None:
        """List jobs ``names`` in the pipeline job, if there is one."""
        if self.pipeline is None and self.pipeline_job is None:
            return
        with pyiron_lock:
            project = self.project()
            self._note(project, Path(project.path), names)

    def pipeline_job_id(self) -> int | None:
        """The id of the pipeline job (made now if it does not exist; None without one)."""
        with pyiron_lock:
            project = self.project()
            name = self._pipeline(project, Path(project.path))
            row = None if name is None else _row(project, name)
        return None if row is None else int(row["id"])

    def _create(
        self,
        project: Any,
        folder: Path,
        name: str,
        stage: str,
        settings: Mapping[str, Any],
        inputs: Sequence[Sequence[Atoms]],
        versions: Mapping[str, str],
    ) -> AssystStage:
        """Create and save job ``name`` with its input, status running. An input list that is
        exactly a stored job's output is kept as a reference to that job (by name), any other
        is stored in the job. The parent is the job that made the first input list (or its
        first structure)."""
        index = Index(folder)
        input_uuids = [_uuids(structures) for structures in inputs]
        sources: list[Any] = []
        for structures, uuids in zip(inputs, input_uuids, strict=True):
            exact = index.exact_producer(uuids) if all(uuids) else None
            row = None if exact is None else _row(project, exact)
            usable = row is not None and row["status"] in USABLE_STATUSES  # the index may lag
            sources.append(JobInput(str(exact)) if usable else list(structures))
        parent = next(
            (p for p in (index.producer(uuids) for uuids in input_uuids) if p is not None), None
        )
        job = project.create_job(job_class(stage), name)
        job.input.__dict__["_stage"] = stage
        job.input.__dict__["_values"] = dict(settings)  # exactly as recorded (the name's hash)
        job.input.__dict__["_sources"] = sources
        job.input.__dict__["_computed_with"] = dict(versions)
        if parent is not None:
            parent_row = _row(project, parent)
            if parent_row is not None:
                job.parent_id = int(parent_row["id"])
        with quiet():
            job.save(input_uuids=input_uuids)
        job._set_status("running", file=False)
        return job
