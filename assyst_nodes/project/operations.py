"""What a user does with a whole project: open it (:func:`open_project`) and remove a pipeline
with, if asked, the stage jobs only it used (:func:`remove_pipeline`).

This module sits above the job classes: :func:`open_project` is
:func:`~assyst_nodes.project.binding.bind_project` (the database binding) with the job
classes registered (``pr.create.job.AssystRelax``, ...) and the stage jobs of older versions
released (:func:`~assyst_nodes.project.jobs.release_stage_jobs`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .binding import BoundProject, bind_project
from .database import pyiron_lock
from .jobs import release_stage_jobs
from .pipelines import _pipeline_rows, listed_jobs, pipeline_job_name

__all__ = ["open_project", "remove_pipeline"]


def open_project(project_or_path: Any, use_user_config: bool | None = None) -> BoundProject:
    """The pyiron project of ``project_or_path``, bound to its database; the folder is created
    if missing.

    Parameters
    ----------
    project_or_path : str, os.PathLike or object
        A folder, a pyiron ``Project`` (or any group of one) or a
        :class:`~assyst_nodes.project.recorder.ProjectRecorder`: as for
        :func:`~assyst_nodes.project.binding.bind_project`, which says where it opens.
    use_user_config : bool, optional
        Which database a folder outside an embedded root opens on: as for
        :func:`~assyst_nodes.project.binding.bind_project`. Default: ``None`` (the user's
        pyiron configuration if there is one, else a new embedded SQLite file).

    Returns
    -------
    BoundProject
        The project of the folder, bound to its database, with this package's job classes
        known to ``pr.create.job``. Stage jobs that versions before 0.3 made pyiron children of
        a pipeline job are released on the way.

    Raises
    ------
    ValueError, PermissionError
        As :func:`~assyst_nodes.project.binding.bind_project` raises them.
    """
    with pyiron_lock:
        project = bind_project(project_or_path, use_user_config)
        release_stage_jobs(project)  # stage jobs of an older version: no pipeline's children
        return project


def remove_pipeline(
    project_or_path: Any,
    pipeline: str | int,
    with_stage_jobs: bool = False,
    use_user_config: bool | None = None,
) -> list[str]:
    """Remove a pipeline job from its project, and if asked the stage jobs only it used.

    Parameters
    ----------
    project_or_path : str, os.PathLike or object
        The project: a folder, a pyiron ``Project`` (or any group of one) or a
        :class:`~assyst_nodes.project.recorder.ProjectRecorder` (see
        :func:`open_project`).
    pipeline : str or int
        The pipeline job: its job name, its id, or the ``pipeline`` name given to a
        :class:`~assyst_nodes.project.ProjectRecorder`.
    with_stage_jobs : bool, default False
        ``False``: as pyiron's ``remove_job`` of the pipeline job, the stage jobs stay, also
        those only this pipeline used. ``True``: every stage job it lists that no other
        pipeline job of the folder lists is removed too (pyiron's ``remove_job`` on each).
    use_user_config : bool, optional
        Which database a folder opens on (see
        :func:`open_project`): ``None`` (default) the user's
        pyiron configuration if there is one, else an embedded SQLite file; ``True``/``False``
        force either. A folder inside an embedded root always uses that root's.

    Returns
    -------
    list of str
        The names of the jobs removed, the pipeline job last.

    Raises
    ------
    KeyError
        If there is no such pipeline job.
    ValueError
        With ``with_stage_jobs=True``, for a pipeline job of an older version that lists its
        stage jobs by id.
    """
    with pyiron_lock:
        project = open_project(project_or_path, use_user_config)
        folder = Path(project.path)
        rows = {str(r["job"]): r for r in _pipeline_rows(project)}
        if isinstance(pipeline, int) or str(pipeline).isdigit():
            by_id = {int(r["id"]): n for n, r in rows.items()}
            name = by_id.get(int(pipeline))
        else:
            name = next(
                (n for n in (str(pipeline), pipeline_job_name(str(pipeline))) if n in rows), None
            )
        if name is None:
            raise KeyError(f"no pipeline job {pipeline!r} in project {project.path}")
        removed: list[str] = []
        if with_stage_jobs:
            mine = listed_jobs(folder / f"{name}.h5", name)
            if mine is None:
                raise ValueError(
                    f"pipeline job {name} was made by an older version and lists its stage "
                    "jobs by numeric id; remove its stage jobs by name with pr.remove_job"
                )
            others: set[str] = set()
            for other in rows:
                if other != name:
                    others.update(listed_jobs(folder / f"{other}.h5", other) or [])
            for job in mine:
                if job not in others and project.get_job_id(job) is not None:
                    project.remove_job(job)
                    removed.append(job)
        project.remove_job(name)
        removed.append(name)
    return removed
