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

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from ase import Atoms

from assyst_nodes.lineage import LINEAGE, SEED, STEP, UUID

from .database import open_project, pyiron_lock
from .index import Index
from .jobs import STAGE_OF_CLASS, USABLE_STATUSES, job_h5
from .layout import STRUCTURES, job_file, read_for_index, read_stage
from .store import read_structures, structure_table

__all__ = ["Link", "history", "stage_jobs", "structure_frame", "structures"]

ProjectLike = Any
"""A folder path (str or os.PathLike), a pyiron ``Project`` or a ``ProjectRecorder``."""


@dataclass(frozen=True)
class Link:
    """One structure of a lineage chain: its uuid, step, the id of the job that stores it and the
    structure itself."""

    uuid: str
    step: str | None
    job_id: int
    structure: Atoms


@dataclass(frozen=True)
class _Job:
    """A usable stage job of the job table."""

    job_id: int
    name: str
    stage: str
    folder: Path


def stage_jobs(project_or_path: ProjectLike, recursive: bool = True) -> list[Any]:
    """The job-table rows (dicts) of the stage jobs in the project (and its sub-projects if
    ``recursive``), any status, oldest first."""
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


def _usable_jobs(project_or_path: ProjectLike, recursive: bool) -> dict[int, _Job]:
    """The usable stage jobs, every folder's index reconciled with them."""
    rows: dict[Path, list[dict[str, Any]]] = {}
    for row in stage_jobs(project_or_path, recursive):
        if row["status"] in USABLE_STATUSES:
            rows.setdefault(job_h5(row).parent, []).append(row)
    jobs: dict[int, _Job] = {}
    for folder, found in rows.items():
        index = Index(folder)
        indexed = index.jobs()
        table = {}
        for row in found:
            job_id, name = int(row["id"]), str(row["job"])
            stage = STAGE_OF_CLASS[str(row["hamilton"])]
            if not stage:  # a stage without its own class: its name is in the index or file
                known = indexed.get(job_id)
                stage = known[1] if known and known[0] == name else _stage_of(folder, name)
            table[job_id] = (name, stage)
            jobs[job_id] = _Job(job_id, name, stage, folder)
        index.reconcile(table, _loader(folder))
    return jobs


def _stage_of(folder: Path, name: str) -> str:
    return read_stage(folder / f"{name}.h5", name)


def _loader(folder: Path) -> Any:
    """Reads what the index keeps of a job in ``folder`` from its file."""
    return lambda job_id, name: read_for_index(folder / f"{name}.h5", name)


def _job_ids(jobs: dict[int, _Job], job: int | str | Sequence[int | str] | None) -> list[int]:
    """Job ids of ``job`` (an id, a job name or a list of them); KeyError naming an unknown one."""
    wanted = [job] if isinstance(job, int | str) else list(job or [])
    by_name = {j.name: i for i, j in jobs.items()}
    ids = []
    for item in wanted:
        if isinstance(item, str) and not item.isdigit():
            if item not in by_name:
                raise KeyError(f"no finished stage job named {item!r}")
            ids.append(by_name[item])
        else:
            ids.append(int(item))
    return ids


Row = tuple[str, int, int, str, "str | None", int]
"""(uuid, job_id, row, stage, step, created) of one stored structure."""


def _rows(
    jobs: dict[int, _Job],
    step: str | None,
    job: int | str | Sequence[int | str] | None,
    stage: str | None,
    uuids: Sequence[str] | None,
) -> list[Row]:
    """The matching rows of every folder. Without ``job`` and ``stage`` each uuid comes once,
    from the job that made it (else the oldest job holding it)."""
    job_ids = None if job is None else _job_ids(jobs, job)
    wanted = None if uuids is None else [str(u) for u in uuids]
    rows: list[Row] = []
    for folder in dict.fromkeys(j.folder for j in jobs.values()):
        rows.extend(
            r
            for r in Index(folder).select(step=step, job_ids=job_ids, stage=stage, uuids=wanted)
            if r[1] in jobs
        )
    if job is None and stage is None:
        best: dict[str, tuple[int, int, int]] = {}
        for uid, job_id, row, _, _, created in rows:
            rank = (-created, job_id, row)
            if uid not in best or rank < best[uid]:
                best[uid] = rank
        rows = [r for r in rows if best[r[0]] == (-r[5], r[1], r[2])]
    if wanted is not None:
        position = {uid: k for k, uid in reversed(list(enumerate(wanted)))}
        rows.sort(key=lambda r: (position[r[0]], -r[5], r[1], r[2]))
    else:
        rows.sort(key=lambda r: (r[1], r[2]))
    return rows


def _read(jobs: dict[int, _Job], rows: Sequence[Row]) -> list[Atoms]:
    """The structures of ``rows``, in order, one read per job."""
    by_job: dict[int, list[int]] = {}
    for _, job_id, row, *_ in rows:
        by_job.setdefault(job_id, []).append(row)
    found: dict[tuple[int, int], Atoms] = {}
    for job_id, wanted in by_job.items():
        job = jobs[job_id]
        unique = sorted(set(wanted))
        with job_file(job.folder / f"{job.name}.h5", job.name) as handle:
            atoms = read_structures(handle[f"{job.name}/{STRUCTURES}"], unique)
        found.update({(job_id, row): a for row, a in zip(unique, atoms, strict=True)})
    return [found[(job_id, row)] for _, job_id, row, *_ in rows]


def structures(
    project_or_path: ProjectLike,
    step: str | None = None,
    job: int | str | Sequence[int | str] | None = None,
    stage: str | None = None,
    uuids: Sequence[str] | None = None,
    recursive: bool = True,
) -> list[Atoms]:
    """The stored structures matching every given filter (all of them if none is given).

    ``step``: ``info["step"]``; ``job``: job id(s) or name(s); ``stage``: e.g. ``"relax"``;
    ``uuids``: these structures, in this order (unknown ones are left out); ``recursive``:
    sub-projects too. Without ``job`` and ``stage`` each uuid comes once, from the job that made
    it; with them, every job's copy.
    """
    jobs = _usable_jobs(project_or_path, recursive)
    return _read(jobs, _rows(jobs, step, job, stage, uuids))


_FIRST = [
    UUID,
    SEED,
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
    """One row per structure :func:`structures` would return, built without Atoms.

    Columns: uuid, seed, step, job_id, stage, formula, natoms, volume_per_atom (Å^3),
    energy_per_atom (eV), max_force (eV/Å), spacegroup, relax_converged, then the other scalar
    info keys.
    """
    jobs = _usable_jobs(project_or_path, recursive)
    rows = _rows(jobs, step, job, stage, uuids)
    if not rows:
        return pd.DataFrame({column: [] for column in _FIRST})
    by_job: dict[int, list[tuple[int, int]]] = {}
    for position, (_, job_id, row, *_) in enumerate(rows):
        by_job.setdefault(job_id, []).append((position, row))
    parts = []
    for job_id, wanted in by_job.items():
        job = jobs[job_id]
        with job_file(job.folder / f"{job.name}.h5", job.name) as handle:
            table = structure_table(handle[f"{job.name}/{STRUCTURES}"])
        part = table.iloc[[row for _, row in wanted]].reset_index(drop=True)
        part.insert(3, "job_id", job_id)
        part.insert(4, "stage", job.stage)
        part.index = pd.Index([position for position, _ in wanted])
        parts.append(part)
    frame = (parts[0] if len(parts) == 1 else pd.concat(parts)).sort_index()
    frame = frame.reset_index(drop=True)
    order = [c for c in _FIRST if c in frame.columns]
    return frame[order + [c for c in frame.columns if c not in order]]


def history(project_or_path: ProjectLike, uuid: str, recursive: bool = True) -> list[Link]:
    """The chain of ``uuid``: its stored ancestors oldest first (the sampled seed crystal
    first), then the structure itself, following ``info["lineage"]``.

    Ancestors that are not stored (never, or their job was removed) are left out. Raises
    ``KeyError`` naming ``uuid`` if the project does not hold it.
    """
    jobs = _usable_jobs(project_or_path, recursive)
    rows = _rows(jobs, None, None, None, [uuid])
    if not rows:
        raise KeyError(f"structure {uuid} is not in project {_path_of(project_or_path)}")
    (structure,) = _read(jobs, rows)
    lineage = [str(u) for u in structure.info.get(LINEAGE, [])]
    ancestor_rows = _rows(jobs, None, None, None, lineage)
    ancestors = _read(jobs, ancestor_rows)
    links = [
        Link(uid, atoms.info.get(STEP), job_id, atoms)
        for (uid, job_id, *_), atoms in zip(ancestor_rows, ancestors, strict=True)
    ]
    (uid, job_id, *_) = rows[0]
    return [*links, Link(uid, structure.info.get(STEP), job_id, structure)]


def _path_of(project_or_path: ProjectLike) -> str:
    return str(getattr(project_or_path, "path", project_or_path))
