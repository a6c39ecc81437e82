"""Queries over the structures of a project: by step, job, stage, uuid; lineage chains.

``project_or_path`` is a folder, a pyiron ``Project`` (any group of the user's project) or a
``ProjectRecorder``; with ``recursive`` (the default, as pyiron's ``job_table``) the stage jobs
of every sub-project count too. The job table says which stage jobs exist and are usable
(``finished`` or ``warning``); each folder's structure index (``assyst_index.db``) is reconciled
with it first, so a job removed or added with pyiron's own tools is never cited and always
found. The structures are read from the jobs' HDF5 files with h5py, each file opened once. A job
file that is missing, truncated or damaged raises
:class:`~assyst_nodes.project.layout.DamagedJobError` naming the job and file.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from ase import Atoms

from assyst_nodes.lineage import LINEAGE, STEP, UUID

from .database import pyiron_lock
from .index import Index, frame_of
from .jobs import STAGE_OF_CLASS, USABLE_STATUSES, job_h5, job_stamp
from .layout import STRUCTURES, job_file, read_for_index, read_stage
from .operations import open_project
from .store import read_structures

__all__ = ["Link", "history", "stage_jobs", "structure_frame", "structures"]

ProjectLike = Any
"""A folder path (str or os.PathLike), a pyiron ``Project`` or a ``ProjectRecorder``."""


@dataclass(frozen=True)
class Link:
    """One structure of a lineage chain (see :func:`history`).

    Parameters
    ----------
    uuid : str
        The structure's uuid.
    step : str or None
        Its ``info["step"]`` (``None``: it has none).
    job_id : int
        The id of the job that stores it.
    structure : ase.Atoms
        The structure itself, as stored (with its calculator's results, e.g. energy in eV).
    """

    uuid: str
    step: str | None
    job_id: int
    structure: Atoms


@dataclass(frozen=True)
class _Job:
    """A usable stage job of the job table, and the stamp its folder's index has of it."""

    job_id: int
    name: str
    stage: str
    folder: Path
    stamp: str


JobKey = tuple[Path, str]
"""(folder, name): a job, which pyiron's renumbering of ids does not change."""


def stage_jobs(project_or_path: ProjectLike, recursive: bool = True) -> list[Any]:
    """The job-table rows of the stage jobs in the project, any status, oldest first.

    Parameters
    ----------
    project_or_path : str, os.PathLike or object
        The project: a folder, a pyiron ``Project`` (any group of the user's project) or a
        :class:`~assyst_nodes.project.recorder.ProjectRecorder`.
    recursive : bool, default True
        Whether the stage jobs of its sub-projects count too.

    Returns
    -------
    list of dict
        One job-table row (a dict: ``id``, ``job``, ``status``, ``hamilton``, ...) per stage
        job, by ascending job id; pipeline jobs are not stage jobs.

    Raises
    ------
    FileNotFoundError
        If the project folder does not exist.
    """
    path = Path(str(getattr(project_or_path, "path", project_or_path))).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(f"no project folder at {path.absolute()}")
    with pyiron_lock:
        project = open_project(project_or_path)
        base = project.project_path
        clause: dict[str, Any] = {
            "project": base + "%" if recursive else base,
            "hamilton": list(STAGE_OF_CLASS),
        }
        rows = project.db.get_items_dict(clause)
    # LIKE may over-match ('_' is a wildcard): keep exactly the folder and the ones below it
    rows = [r for r in rows if str(r["project"]).startswith(base) or not recursive]
    return sorted(rows, key=lambda r: int(r["id"]))


def _usable_jobs(
    project_or_path: ProjectLike, recursive: bool, files: bool = True
) -> dict[JobKey, _Job]:
    """The usable stage jobs, every folder's index reconciled with them. ``files``: compare
    every job's file with what the index knows of it (one ``stat`` each); else only the jobs the
    index does not know under their id (see :func:`_point_query`)."""
    rows: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in stage_jobs(project_or_path, recursive):
        if row["status"] in USABLE_STATUSES:  # one folder per (projectpath, project): no Path
            rows.setdefault((row.get("projectpath") or "", row["project"]), []).append(row)
    jobs: dict[JobKey, _Job] = {}
    for found in rows.values():
        folder = job_h5(found[0]).parent
        where = os.fspath(folder)
        index = Index(folder)
        indexed = index.jobs()
        table = {}
        for row in found:
            job_id, name = int(row["id"]), str(row["job"])
            known = indexed.get(name)
            if not files and known is not None and known[0] == job_id:
                stamp = known[1]  # trusted; _point_query checks the files it reads
            else:
                stamp = job_stamp(job_id, os.path.join(where, f"{name}.h5"))
            stage = STAGE_OF_CLASS[str(row["hamilton"])]
            if not stage:  # a stage without its own class: its name is in the index or file
                stage = known[2] if known and known[1] == stamp else _stage_of(folder, name)
            table[name] = (job_id, stamp, stage)
            jobs[(folder, name)] = _Job(job_id, name, stage, folder, stamp)
        index.reconcile(table, _loader(folder), indexed)
    return jobs


def _fresh(jobs: dict[JobKey, _Job], rows: Sequence[Row]) -> bool:
    """Whether the files of the jobs ``rows`` come from are as their index stamps say."""
    for key in {(r[1], r[2]) for r in rows}:
        job = jobs[key]
        if job_stamp(job.job_id, job.folder / f"{job.name}.h5") != job.stamp:
            return False
    return True


def _point_query(
    project_or_path: ProjectLike, recursive: bool, query: Callable[[dict[JobKey, _Job]], Any]
) -> tuple[dict[JobKey, _Job], list[Row]]:
    """The usable jobs and the rows ``query(jobs)`` finds, with the indexes trusted for the jobs
    they know (no ``stat`` of every job file, which a query of a few structures would pay for
    nothing); if a file the rows come from changed since it was indexed, everything again
    after a full reconcile."""
    jobs = _usable_jobs(project_or_path, recursive, files=False)
    rows = query(jobs)
    if _fresh(jobs, rows):
        return jobs, rows
    jobs = _usable_jobs(project_or_path, recursive)
    return jobs, query(jobs)


def _stage_of(folder: Path, name: str) -> str:
    return read_stage(folder / f"{name}.h5", name)


def _loader(folder: Path) -> Any:
    """Reads what the index keeps of a job in ``folder`` from its file."""
    return lambda name: read_for_index(folder / f"{name}.h5", name)


def _job_keys(
    jobs: dict[JobKey, _Job], job: int | str | Sequence[int | str] | None
) -> set[JobKey]:
    """The jobs ``job`` names (an id, a job name or a list of them); ``KeyError`` naming an
    unknown one."""
    wanted = [job] if isinstance(job, int | str) else list(job or [])
    by_id = {j.job_id: key for key, j in jobs.items()}
    keys: set[JobKey] = set()
    for item in wanted:
        if isinstance(item, str) and not item.isdigit():
            found = {key for key in jobs if key[1] == item}
            if not found:
                raise KeyError(f"no finished stage job named {item!r}")
            keys |= found
        elif int(item) in by_id:
            keys.add(by_id[int(item)])
    return keys


Row = tuple[Any, ...]
"""(uuid, folder, name, row, stage, step, created, job_id[, frame columns]) of one stored
structure."""


def _rows(
    jobs: dict[JobKey, _Job],
    step: str | None,
    job: int | str | Sequence[int | str] | None,
    stage: str | None,
    uuids: Sequence[str] | None,
    frame: bool = False,
) -> list[Row]:
    """The matching rows of every folder (with the structure-table columns if ``frame``).
    Without ``job`` and ``stage`` each uuid comes once, from the job that made it (else the
    oldest job holding it)."""
    keys = None if job is None else _job_keys(jobs, job)
    wanted = None if uuids is None else [str(u) for u in uuids]
    rows: list[Row] = []
    for folder in dict.fromkeys(key[0] for key in jobs):
        names = None if keys is None else [name for f, name in keys if f == folder]
        if names == []:
            continue
        for found in Index(folder).select(step, names, stage, wanted, frame):
            uid, name, row, found_stage, found_step, created = found[:6]
            if (folder, name) in jobs:
                job_id = jobs[(folder, name)].job_id
                rows.append((uid, folder, name, row, found_stage, found_step, created, job_id,
                             *found[7:]))
    if job is None and stage is None:
        best: dict[str, tuple[int, int, int]] = {}
        for r in rows:
            rank = (-r[6], r[7], r[3])
            if r[0] not in best or rank < best[r[0]]:
                best[r[0]] = rank
        rows = [r for r in rows if best[r[0]] == (-r[6], r[7], r[3])]
    if wanted is not None:
        position = {uid: k for k, uid in reversed(list(enumerate(wanted)))}
        rows.sort(key=lambda r: (position[r[0]], -r[6], r[7], r[3]))
    else:
        rows.sort(key=lambda r: (r[7], r[3]))
    return rows


def _read(rows: Sequence[Row]) -> list[Atoms]:
    """The structures of ``rows``, in order, one read per job."""
    by_job: dict[JobKey, list[int]] = {}
    for _, folder, name, row, *_ in rows:
        by_job.setdefault((folder, name), []).append(row)
    found: dict[tuple[Path, str, int], Atoms] = {}
    for (folder, name), wanted in by_job.items():
        unique = sorted(set(wanted))
        with job_file(folder / f"{name}.h5", name) as handle:
            atoms = read_structures(handle[f"{name}/{STRUCTURES}"], unique)
        found.update({(folder, name, row): a for row, a in zip(unique, atoms, strict=True)})
    return [found[(folder, name, row)] for _, folder, name, row, *_ in rows]


def structures(
    project_or_path: ProjectLike,
    step: str | None = None,
    job: int | str | Sequence[int | str] | None = None,
    stage: str | None = None,
    uuids: Sequence[str] | None = None,
    recursive: bool = True,
) -> list[Atoms]:
    """The stored structures matching every given filter (all of them if none is given).

    Parameters
    ----------
    project_or_path : str, os.PathLike or object
        The project: a folder, a pyiron ``Project`` (any group of the user's project) or a
        :class:`~assyst_nodes.project.recorder.ProjectRecorder`.
    step : str, optional
        Only structures whose ``info["step"]`` is this. Default: none (any step).
    job : int, str or sequence of int or str, optional
        Only structures stored by these jobs: job id(s) or name(s); unknown ids match
        nothing. Default: none (any job).
    stage : str, optional
        Only structures stored by jobs of this stage, e.g. ``"relax"`` (``sample``, ``relax``,
        ``perturb``, ``combine``, ``filter``, ``label``). Default: none (any stage).
    uuids : sequence of str, optional
        Only these structures, in this order (unknown ones are left out). Default: none (all).
    recursive : bool, default True
        Whether the stage jobs of every sub-project count too (as pyiron's ``job_table``).

    Returns
    -------
    list of ase.Atoms
        The structures, with their ``info`` (uuid, step, lineage, ...) and calculator results
        as stored; in the order of ``uuids`` if given, else by job id and position in the job.
        Without ``job`` and ``stage`` each uuid comes once, from the job that made it (else the
        oldest job holding it); with them, every job's copy.

    Raises
    ------
    KeyError
        Naming a job name of ``job`` that is no usable stage job.
    DamagedJobError
        Naming the job and file, if a job file that is read is missing, truncated or damaged
        (:class:`~assyst_nodes.project.layout.DamagedJobError`).
    """
    _, rows = _point_query(
        project_or_path, recursive, lambda jobs: _rows(jobs, step, job, stage, uuids)
    )
    return _read(rows)


_FIRST = [
    UUID,
    "seed",
    STEP,
    "job_id",
    "stage",
    "formula",
    "natoms",
    "volume_per_atom",
    "energy_per_atom",
    "max_force",
    "spacegroup",
    "relax_converged",
]


def structure_frame(
    project_or_path: ProjectLike,
    step: str | None = None,
    job: int | str | Sequence[int | str] | None = None,
    stage: str | None = None,
    uuids: Sequence[str] | None = None,
    recursive: bool = True,
) -> pd.DataFrame:
    """One row per structure :func:`structures` would return, read from the folders' structure
    indexes alone (no job file is opened, no Atoms built).

    Parameters
    ----------
    project_or_path : str, os.PathLike or object
        The project: a folder, a pyiron ``Project`` (any group of the user's project) or a
        :class:`~assyst_nodes.project.recorder.ProjectRecorder`.
    step : str, optional
        Only structures whose ``info["step"]`` is this. Default: none (any step).
    job : int, str or sequence of int or str, optional
        Only structures stored by these jobs: job id(s) or name(s); unknown ids match
        nothing. Default: none (any job).
    stage : str, optional
        Only structures stored by jobs of this stage, e.g. ``"relax"`` (``sample``, ``relax``,
        ``perturb``, ``combine``, ``filter``, ``label``). Default: none (any stage).
    uuids : sequence of str, optional
        Only these structures, in this order (unknown ones are left out). Default: none (all).
    recursive : bool, default True
        Whether the stage jobs of every sub-project count too (as pyiron's ``job_table``).

    Returns
    -------
    pandas.DataFrame
        Columns: uuid, seed, step, job_id, stage, formula, natoms, volume_per_atom (Å^3),
        energy_per_atom (eV), max_force (eV/Å), spacegroup, relax_converged, then the other
        scalar info keys. No rows (but the fixed columns) if nothing matches.

    Raises
    ------
    KeyError
        Naming a job name of ``job`` that is no usable stage job.
    DamagedJobError
        Naming the job and file, if the file of a job the index must take in is missing,
        truncated or damaged (:class:`~assyst_nodes.project.layout.DamagedJobError`).
    """
    jobs = _usable_jobs(project_or_path, recursive)
    rows = _rows(jobs, step, job, stage, uuids, frame=True)
    if not rows:
        return pd.DataFrame({column: [] for column in _FIRST})
    # uuid, step, seed, formula, natoms, volume, energy, force, spacegroup, converged, extra
    frame = frame_of([(r[0], r[5], *r[8:]) for r in rows])
    frame.insert(3, "job_id", pd.Series([r[7] for r in rows], dtype="int64"))
    frame.insert(4, "stage", pd.Series([r[4] for r in rows], dtype=object))
    return frame


def history(project_or_path: ProjectLike, uuid: str, recursive: bool = True) -> list[Link]:
    """The chain of ``uuid``: its stored ancestors oldest first (the sampled seed crystal
    first), then the structure itself, following ``info["lineage"]``.

    Parameters
    ----------
    project_or_path : str, os.PathLike or object
        The project: a folder, a pyiron ``Project`` (any group of the user's project) or a
        :class:`~assyst_nodes.project.recorder.ProjectRecorder`.
    uuid : str
        The uuid of a stored structure.
    recursive : bool, default True
        Whether the stage jobs of every sub-project count too.

    Returns
    -------
    list of Link
        One :class:`Link` per structure, the structure itself last. Ancestors that are not
        stored (never, or their job was removed) are left out.

    Raises
    ------
    KeyError
        Naming ``uuid`` if the project does not hold it.
    DamagedJobError
        Naming the job and file, if a job file that is read is missing, truncated or damaged
        (:class:`~assyst_nodes.project.layout.DamagedJobError`).
    """
    jobs, rows = _point_query(
        project_or_path, recursive, lambda jobs: _rows(jobs, None, None, None, [uuid])
    )
    if not rows:
        raise KeyError(f"structure {uuid} is not in project {_path_of(project_or_path)}")
    (structure,) = _read(rows)
    lineage = [str(u) for u in structure.info.get(LINEAGE, [])]
    ancestor_rows = _rows(jobs, None, None, None, lineage)
    if not _fresh(jobs, ancestor_rows):
        jobs, ancestor_rows = _point_query(
            project_or_path, recursive, lambda jobs: _rows(jobs, None, None, None, lineage)
        )
    ancestors = _read(ancestor_rows)
    links = [
        Link(r[0], atoms.info.get(STEP), r[7], atoms)
        for r, atoms in zip(ancestor_rows, ancestors, strict=True)
    ]
    return [*links, Link(rows[0][0], structure.info.get(STEP), rows[0][7], structure)]


def _path_of(project_or_path: ProjectLike) -> str:
    return str(getattr(project_or_path, "path", project_or_path))
