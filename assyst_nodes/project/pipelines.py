"""Pipeline jobs and the stage jobs they use: membership by name, status, and removal.

A pipeline job (:class:`~assyst_nodes.project.jobs.AssystPipeline`) lists the stage jobs its run
used, by **name** (``output/jobs``, JSON), in its own folder. A stage job may serve several
pipelines (a second run reuses the first's jobs), so it is nobody's pyiron child (``masterid``):
pyiron's ``remove_job`` of a pipeline removes the pipeline job only.
:func:`remove_pipeline` with ``with_stage_jobs=True`` removes the stage jobs no other pipeline
lists as well.

A pipeline's status in the job table aggregates its stage jobs' (:func:`aggregate_status`):
``aborted`` if one is aborted or no longer in the job table, ``running`` while one is being
computed, ``warning`` if one lost structures to errors, else ``finished``. Removing a stage job
with pyiron's tools marks every pipeline of its folder that lists it ``aborted`` at once (and
storing it again gives them back their aggregate), and a pipeline job's ``output["missing"]``
names the jobs it lists that are gone.

Plain h5py for the files; the job table is reached through the project given.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Final

import h5py

from .layout import USABLE_STATUSES, job_file
from .pyiron_internals import write_h5io
from .store import LIBVER

__all__ = [
    "JOBS",
    "PIPELINE_CLASS",
    "add_jobs",
    "aggregate_status",
    "listed_jobs",
    "pipeline_job_name",
    "pipeline_state",
    "update_pipelines_listing",
]

JOBS: Final = "output/jobs"
"""Path of a pipeline job's list of stage-job names (JSON) inside its group."""
OLD_JOB_IDS: Final = "output/job_ids"
"""Where pipeline jobs of versions before 0.3 listed their stage jobs, by numeric id."""
PIPELINE_CLASS: Final = "AssystPipeline"
"""The job class (``hamilton``) of pipeline jobs."""


def listed_jobs(file: str | Path, name: str) -> list[str] | None:
    """Read the names of the stage jobs a pipeline job lists.

    Parameters
    ----------
    file : str or pathlib.Path
        The pipeline job's HDF5 file.
    name : str
        The pipeline job's name (its group in ``file``).

    Returns
    -------
    list of str or None
        The stage-job names it lists, in the order they were added (empty if it lists none);
        ``None`` for a pipeline job of a version before 0.3, which lists its jobs by id.
    """
    with job_file(file, name) as handle:
        group = handle[name]
        if JOBS in group:
            return [str(n) for n in json.loads(group[JOBS][...].tobytes().decode())]
        if OLD_JOB_IDS in group:
            return None
    return []


def add_jobs(file: str | Path, name: str, jobs: Iterable[str]) -> list[str]:
    """Append ``jobs`` (each once) to the names pipeline job ``name`` lists.

    Parameters
    ----------
    file : str or pathlib.Path
        The pipeline job's HDF5 file.
    name : str
        The pipeline job's name (its group in ``file``).
    jobs : iterable of str
        Names of stage jobs; those it lists already are not added again.

    Returns
    -------
    list of str
        The whole list, the new names last.

    Notes
    -----
    Hold the pipeline's lock around it when several processes may add at once.
    """
    with h5py.File(file, "a", libver=LIBVER) as handle:
        group = handle[name]
        known = json.loads(group[JOBS][...].tobytes().decode()) if JOBS in group else []
        new = [str(j) for j in jobs if str(j) not in known]
        if new or JOBS not in group:
            write_h5io(group.require_group("output"), "jobs", json.dumps(known + new))
        return [*known, *new]


def aggregate_status(statuses: Sequence[str], missing: int = 0) -> str:
    """A pipeline's status from its stage jobs' statuses.

    Parameters
    ----------
    statuses : sequence of str
        The job-table statuses of the stage jobs it lists that are in the job table.
    missing : int, default 0
        The number of jobs it lists that are missing from the job table.

    Returns
    -------
    str
        ``aborted`` if a job is missing or aborted, ``running`` while one is in any other
        status but ``finished``/``warning`` (being computed), ``warning`` if one lost
        structures to errors, else ``finished``.
    """
    if missing or "aborted" in statuses:
        return "aborted"
    if any(s not in USABLE_STATUSES for s in statuses):
        return "running"
    return "warning" if "warning" in statuses else "finished"


def pipeline_state(project: Any, names: Sequence[str]) -> tuple[str, dict[str, int], list[str]]:
    """The state of the stage jobs ``names`` in ``project``'s folder.

    Parameters
    ----------
    project : Project
        The pyiron project whose job table is read.
    names : sequence of str
        Names of stage jobs (those a pipeline job lists).

    Returns
    -------
    tuple of (str, dict of str to int, list of str)
        The aggregated status (:func:`aggregate_status`; ``finished`` for no names), name ->
        job id of the listed jobs in the table, and the names missing from it.
    """
    if not names:
        return "finished", {}, []
    rows = project.db.get_items_dict({"job": list(names), "project": project.project_path})
    found = {str(r["job"]): r for r in rows}
    missing = [n for n in names if n not in found]
    status = aggregate_status([str(found[n]["status"]) for n in names if n in found], len(missing))
    return status, {n: int(found[n]["id"]) for n in names if n in found}, missing


def _pipeline_rows(project: Any) -> list[dict[str, Any]]:
    """The job-table rows of the pipeline jobs in ``project``'s folder."""
    return list(
        project.db.get_items_dict({"hamilton": PIPELINE_CLASS, "project": project.project_path})
    )


def update_pipelines_listing(
    project: Any, folder: Path, job: str, removed: bool = False
) -> list[str]:
    """Update the status of the pipeline jobs that list stage job ``job``.

    Their status is set in the job table and in their files: ``aborted`` for every one of them
    when ``job`` is being removed; else (``job`` was just stored) their stage jobs' aggregate
    for those marked ``aborted``, which may be complete again.

    Parameters
    ----------
    project : Project
        The pyiron project of ``folder``.
    folder : pathlib.Path
        The project folder of the pipeline jobs.
    job : str
        The name of the stage job.
    removed : bool, default False
        Whether ``job`` is being removed (``False``: it was just stored).

    Returns
    -------
    list of str
        The names of the pipeline jobs updated; pipeline files that cannot be read are
        skipped.
    """
    updated = []
    for row in _pipeline_rows(project):
        name = str(row["job"])
        if not removed and row["status"] != "aborted":
            continue
        file = folder / f"{name}.h5"
        try:
            listed = listed_jobs(file, name)
        except ValueError:  # a damaged pipeline file lists nothing we can read
            continue
        if listed is None or job not in listed:
            continue
        status = "aborted" if removed else pipeline_state(project, listed)[0]
        if status == row["status"]:
            continue
        project.db.item_update({"status": status}, int(row["id"]))
        if file.exists():
            with h5py.File(file, "a", libver=LIBVER) as handle:
                write_h5io(handle[name], "status", status)
        updated.append(name)
    return updated


def pipeline_job_name(pipeline: str) -> str:
    """The name of the job that groups the runs of a named pipeline.

    Parameters
    ----------
    pipeline : str
        The ``pipeline`` name given to a :class:`~assyst_nodes.project.ProjectRecorder`.

    Returns
    -------
    str
        ``pipeline_<name, made safe, at most 40 characters>_<8 hex of its hash>``.
    """
    digest = hashlib.sha256(pipeline.encode()).hexdigest()[:8]
    safe = re.sub(r"[^A-Za-z0-9_]", "_", pipeline)[:40]
    return f"pipeline_{safe}_{digest}"
