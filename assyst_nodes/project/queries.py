"""Queries over the structures of a project folder: by step, job, stage, uuid; lineage chains.

Queries read the structure index (``assyst_index.db``) and the jobs' HDF5 stores with h5py; they
never touch pyiron's global state, so they work on any folder at any time (also while another
process records into it). Only finished jobs are seen. A job file that is missing, truncated or
damaged raises :class:`~assyst_nodes.project.layout.DamagedJobError` naming the job and file.

``project_or_path`` is a folder path, a pyiron ``Project`` or a ``ProjectRecorder``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from ase import Atoms

from assyst_nodes.lineage import LINEAGE, SEED, STEP, UUID

from .index import INDEX_FILE, Index
from .layout import STRUCTURES, job_file
from .store import read_structures, structure_table

__all__ = ["Link", "history", "structure_frame", "structures"]

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


def _folder(project_or_path: ProjectLike) -> Path:
    """The project folder of a path, ``Project`` or ``ProjectRecorder``."""
    path = getattr(project_or_path, "path", project_or_path)
    folder = Path(os.fspath(path)).expanduser().absolute()
    if not (folder / INDEX_FILE).exists() and not folder.is_dir():
        raise FileNotFoundError(f"no project folder at {folder}")
    return folder


def _job_ids(index: Index, job: int | str | Sequence[int | str] | None) -> list[int] | None:
    """Job ids of ``job`` (an id, a job name or a list of them)."""
    if job is None:
        return None
    wanted = [job] if isinstance(job, int | str) else list(job)
    by_name = {name: job_id for job_id, name in index.job_names().items()}
    ids = []
    for item in wanted:
        if isinstance(item, str) and not item.isdigit():
            if item not in by_name:
                raise KeyError(f"no finished stage job named {item!r}")
            ids.append(by_name[item])
        else:
            ids.append(int(item))
    return ids


def _rows(
    folder: Path,
    step: str | None,
    job: int | str | Sequence[int | str] | None,
    stage: str | None,
    uuids: Sequence[str] | None,
) -> tuple[list[tuple[str, int, int, str, str | None]], dict[int, str]]:
    index = Index(folder)
    names = index.job_names()
    rows = index.select(
        step=step,
        job_ids=_job_ids(index, job),
        stage=stage,
        uuids=None if uuids is None else [str(u) for u in uuids],
        unique=job is None and stage is None,
    )
    return rows, names


def _read(folder: Path, names: dict[int, str], rows: Sequence[tuple[Any, ...]]) -> list[Atoms]:
    """The structures of ``rows`` (uuid, job_id, row, ...), in order, one read per job."""
    by_job: dict[int, list[int]] = {}
    for _, job_id, row, *_ in rows:
        by_job.setdefault(job_id, []).append(row)
    found: dict[tuple[int, int], Atoms] = {}
    for job_id, wanted in by_job.items():
        name = names[job_id]
        unique = sorted(set(wanted))
        with job_file(folder / f"{name}.h5", name) as handle:
            atoms = read_structures(handle[f"{name}/{STRUCTURES}"], unique)
        found.update({(job_id, row): a for row, a in zip(unique, atoms, strict=True)})
    return [found[(job_id, row)] for _, job_id, row, *_ in rows]


def structures(
    project_or_path: ProjectLike,
    step: str | None = None,
    job: int | str | Sequence[int | str] | None = None,
    stage: str | None = None,
    uuids: Sequence[str] | None = None,
) -> list[Atoms]:
    """The stored structures matching every given filter (all of them if none is given).

    ``step``: ``info["step"]``; ``job``: job id(s) or name(s); ``stage``: e.g. ``"relax"``;
    ``uuids``: these structures, in this order (unknown ones are left out). Without ``job`` and
    ``stage`` each uuid comes once, from the job that made it; with them, every job's copy.
    """
    folder = _folder(project_or_path)
    rows, names = _rows(folder, step, job, stage, uuids)
    return _read(folder, names, rows)


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
) -> pd.DataFrame:
    """One row per structure :func:`structures` would return, built without Atoms.

    Columns: uuid, seed, step, job_id, stage, formula, natoms, volume_per_atom (Å^3),
    energy_per_atom (eV), max_force (eV/Å), spacegroup, relax_converged, then the other scalar
    info keys.
    """
    folder = _folder(project_or_path)
    rows, names = _rows(folder, step, job, stage, uuids)
    if not rows:
        return pd.DataFrame({column: [] for column in _FIRST})
    by_job: dict[int, list[tuple[int, int]]] = {}
    for position, (_, job_id, row, *_) in enumerate(rows):
        by_job.setdefault(job_id, []).append((position, row))
    stages = {job_id: stage_ for _, job_id, _, stage_, _ in rows}
    parts = []
    for job_id, wanted in by_job.items():
        name = names[job_id]
        with job_file(folder / f"{name}.h5", name) as handle:
            table = structure_table(handle[f"{name}/{STRUCTURES}"])
        part = table.iloc[[row for _, row in wanted]].reset_index(drop=True)
        part.insert(3, "job_id", job_id)
        part.insert(4, "stage", stages[job_id])
        part.index = pd.Index([position for position, _ in wanted])
        parts.append(part)
    frame = (parts[0] if len(parts) == 1 else pd.concat(parts)).sort_index()
    frame = frame.reset_index(drop=True)
    order = [c for c in _FIRST if c in frame.columns]
    return frame[order + [c for c in frame.columns if c not in order]]


def history(project_or_path: ProjectLike, uuid: str) -> list[Link]:
    """The chain of ``uuid``: its stored ancestors oldest first (the sampled seed crystal
    first), then the structure itself, following ``info["lineage"]``.

    Ancestors that were never stored (e.g. a uuid given to an input that had none) are left out.
    Raises ``KeyError`` naming ``uuid`` if the project does not hold it.
    """
    folder = _folder(project_or_path)
    rows, names = _rows(folder, None, None, None, [uuid])
    if not rows:
        raise KeyError(f"structure {uuid} is not in project {folder}")
    (structure,) = _read(folder, names, rows)
    lineage = [str(u) for u in structure.info.get(LINEAGE, [])]
    ancestor_rows, _ = _rows(folder, None, None, None, lineage)
    ancestors = _read(folder, names, ancestor_rows)
    links = [
        Link(uid, atoms.info.get(STEP), job_id, atoms)
        for (uid, job_id, *_), atoms in zip(ancestor_rows, ancestors, strict=True)
    ]
    (uid, job_id, *_) = rows[0]
    return [*links, Link(uid, structure.info.get(STEP), job_id, structure)]
