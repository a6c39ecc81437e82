"""The slot of a job in a project folder: its name from what it computes, the lock on it, its
job-table row, and discarding what a dead process left in it.

Shared by the recorder of the stages (:mod:`assyst_nodes.project.recorder`) and the fit and
validate jobs (:mod:`assyst_nodes.project.fitting`, :mod:`assyst_nodes.project.validating`),
so every job of ours is named, locked and cleaned up one way.
"""

from __future__ import annotations

import hashlib
import re
import shutil
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ase import Atoms

from ..lineage import UUID, geometry_digest
from ..provenance import computed_with
from .database import ForeignJobError, database_identity
from .index import Index
from .jobs import settings_repr, versions_text
from .layout import DamagedJobError, read_database

try:  # pragma: no cover - platform dependent
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

__all__ = ["job_name"]


def _uuids(structures: Sequence[Atoms]) -> list[str]:
    """The uuid of each structure (``""`` where it has none)."""
    return [str(atoms.info.get(UUID, "")) for atoms in structures]


def _identities(structures: Sequence[Atoms]) -> list[str]:
    """The uuid of each structure, or its geometry digest where it has none."""
    return [
        str(atoms.info[UUID]) if atoms.info.get(UUID) else f"geometry:{geometry_digest(atoms)}"
        for atoms in structures
    ]


def job_name(
    stage: str,
    settings: Mapping[str, Any],
    inputs: Sequence[Sequence[Atoms]],
    versions: Mapping[str, str] | None = None,
) -> str:
    """The name of the job of one stage run: ``<stage>_<12 hex>``.

    The hex is a hash of the stage, the settings' repr sorted by key, the versions of what
    computes it and the input uuids in order, so a rerun with the same of all finds the job
    again.

    Parameters
    ----------
    stage : str
        The stage, e.g. ``"relax"``; characters other than letters, digits and ``_`` become
        ``_`` in the name.
    settings : mapping of str to Any
        The stage's settings; they must have a deterministic ``repr`` (the package's frozen
        configs do).
    inputs : sequence of sequence of ase.Atoms
        The input lists, in order; the geometry digest stands in for a missing uuid.
    versions : mapping of str to str, optional
        The versions of what computes it. Default: none
        (:func:`~assyst_nodes.provenance.computed_with` now); empty: left out, as in jobs of
        versions before 0.3.

    Returns
    -------
    str
        ``<stage>_<12 hex>``.
    """
    if versions is None:
        versions = computed_with(stage, settings)
    digest = hashlib.sha256()
    digest.update(stage.encode())
    digest.update(b"\x00")
    digest.update(settings_repr(settings).encode())
    if versions:
        digest.update(b"\x00computed with\x00")
        digest.update(versions_text(versions).encode())
    for structures in inputs:
        digest.update(b"\x00")
        digest.update("\n".join(_identities(structures)).encode())
    safe = re.sub(r"[^A-Za-z0-9_]", "_", stage) or "stage"
    return f"{safe}_{digest.hexdigest()[:12]}"


@contextmanager
def _locked(folder: Path, name: str, blocking: bool = True) -> Iterator[bool]:
    """Hold the exclusive lock of ``name`` in ``folder`` and yield True; while another process
    has it, wait (``blocking``) or yield False at once."""
    if fcntl is None:  # pragma: no cover
        yield True
        return
    locks = folder / ".locks"
    locks.mkdir(exist_ok=True)
    with open(locks / f"{name}.lock", "a+b") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)



def _row(project: Any, name: str) -> dict[str, Any] | None:
    """The job-table row of job ``name`` in ``project``'s folder (None if there is none)."""
    rows = project.db.get_items_dict({"job": name, "project": project.project_path})
    return rows[0] if rows else None


def _discard(project: Any, folder: Path, name: str, row: dict[str, Any] | None) -> None:
    """Remove every trace of job ``name``: table row, HDF5 file, working folder, index rows.
    Without a row, the file is deleted only if it was written from this job table (a process
    was killed between writing it and adding its row); :class:`ForeignJobError` otherwise."""
    file = folder / f"{name}.h5"
    if row is not None:
        project.db.delete_item(int(row["id"]))
    elif file.exists():
        current = database_identity(project.binding)
        try:
            written = read_database(file, name)
        except DamagedJobError:
            written = current  # no readable job group: half-written by a killed process
        if written != current:
            raise ForeignJobError(file, written, current)
    Index(folder).remove_job(name)
    file.unlink(missing_ok=True)
    shutil.rmtree(folder / f"{name}_hdf5", ignore_errors=True)
