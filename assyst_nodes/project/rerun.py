"""Rerun a stored stage job from what the project stores: its settings and its input (the jobs
that produced it, or the structures stored in the job)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ase import Atoms

from assyst_nodes.reports import StageReport

from .database import pyiron_lock
from .jobs import USABLE_STATUSES, AssystStage, InputChangedError, MissingInputError, run_stage
from .layout import DamagedJobError
from .operations import open_project
from .recorder import ProjectRecorder, _discard, _locked, _row, job_name

__all__ = ["rerun"]


def _job_name_of(project: Any, job: int | str) -> str:
    """The name of job ``job`` (an id or a name)."""
    if isinstance(job, str) and not job.isdigit():
        return job
    row = project.db.get_item_by_id(int(job))
    return str(row["job"]) if row else str(job)


def rerun(
    project_or_path: Any,
    job: int | str,
    force: bool = False,
    use_user_config: bool | None = None,
    **options: Any,
) -> tuple[list[Atoms], StageReport | None]:
    """Run stage job ``job`` (id or name) again from its stored settings and input.

    A usable (``finished``/``warning``) job is reused unless ``force`` (then it is deleted and
    computed again); an aborted or stale one is computed again. A job that other versions of
    the packages computed (:func:`~assyst_nodes.provenance.computed_with`) is kept, and the
    result of the versions installed now is computed as its own job (as any run does). A job a
    recorder made is computed again under its name through a :class:`ProjectRecorder`; one a
    user named (``pr.create.job...``) with pyiron's ``run(delete_existing_job=True)``.

    Parameters
    ----------
    project_or_path : str, os.PathLike or object
        The project: a folder, a pyiron ``Project`` (or any group of one) or a
        :class:`~assyst_nodes.project.recorder.ProjectRecorder` (see
        :func:`~assyst_nodes.project.operations.open_project`).
    job : int or str
        The stage job: its id or its name.
    force : bool, default False
        Whether a usable job is deleted and computed again (``False``: it is reused).
    use_user_config : bool, optional
        Which database a folder opens on (see
        :func:`~assyst_nodes.project.operations.open_project`): ``None`` (default) the user's
        pyiron configuration if there is one, else an embedded SQLite file; ``True``/``False``
        force either. A folder inside an embedded root always uses that root's.
    **options
        Keyword arguments of the stage function (e.g. ``workers``, ``executor``); for a job a
        user named, ``workers`` sets the cores of its pyiron server.

    Returns
    -------
    tuple of (list of ase.Atoms, StageReport or None)
        The structures and the report (``None`` for combine).

    Raises
    ------
    KeyError
        If there is no such stage job.
    DamagedJobError
        Naming the job and its file, if the job's file cannot be read
        (:class:`~assyst_nodes.project.layout.DamagedJobError`).
    MissingInputError
        If a job whose output is its input is no longer in the job table
        (:class:`~assyst_nodes.project.jobs.MissingInputError`).
    InputChangedError
        If such a job now holds other structures than the ones it was made from
        (:class:`~assyst_nodes.project.jobs.InputChangedError`).

    Notes
    -----
    When one of these errors is raised, nothing is removed or computed.
    """
    with pyiron_lock:
        project = open_project(project_or_path, use_user_config)
        try:
            loaded = project.load(job)
            if loaded is None or not isinstance(loaded, AssystStage):
                raise KeyError(f"no assyst stage job {job!r} in project {project.path}")
            stage = loaded.stage_name
            settings = loaded.input.kwargs(check=False)
            inputs = loaded.input_structures()
        except (KeyError, DamagedJobError, InputChangedError, MissingInputError):
            raise
        except Exception as error:  # pyiron/h5py deep inside: name the job and its file
            name = _job_name_of(project, job)
            raise DamagedJobError(name, Path(project.path) / f"{name}.h5", error) from error
        stored_name = loaded.job_name
        folder = Path(project.path)
    if job_name(stage, settings, inputs, loaded.computed_with()) != stored_name:
        # named by a user: pyiron reruns it
        with pyiron_lock:
            if force or loaded.status.string not in USABLE_STATUSES:
                if "workers" in options:
                    loaded.server.cores = int(options["workers"])
                loaded.run(delete_existing_job=True)
        return loaded.structures(), loaded.report()
    recorder = ProjectRecorder(str(folder), use_user_config=project.database_kind == "user")
    if force and job_name(stage, settings, inputs) == stored_name:
        # the same name is computed again (a job of other versions is kept: the recorder
        # computes one under the name of the versions installed now)
        with _locked(folder, stored_name), pyiron_lock:  # lock order of ProjectRecorder.record
            _discard(project, folder, stored_name, _row(project, stored_name))
    return run_stage(stage, inputs, settings, recorder, **options)
