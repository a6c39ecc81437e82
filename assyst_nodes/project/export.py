"""Export structure sets: extended XYZ (for fitting codes) and tables (pandas pickle, parquet)."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import h5py
import pandas as pd
from ase import Atoms

from ..io.extxyz import write_extxyz
from .queries import structure_frame
from .store import structure_table, write_structures

__all__ = ["export_extxyz", "export_table"]


def export_extxyz(structures: Sequence[Atoms], path: str | os.PathLike[str]) -> Path:
    """Write ``structures`` to the extended XYZ file ``path`` and return it.

    Parameters
    ----------
    structures : sequence of ase.Atoms
        The structures, e.g. of :func:`~assyst_nodes.project.queries.structures`.
    path : str or os.PathLike
        The extended XYZ file to write (overwritten if it exists).

    Returns
    -------
    pathlib.Path
        ``path``.

    Notes
    -----
    Energies (eV), forces (eV/Å) and stress (eV/Å^3) of the attached calculators are written;
    ``lineage`` (and any other list of strings) becomes one space-separated string; ``None`` and
    empty values (e.g. the empty lineage of a sampled crystal) are left out.
    """
    return write_extxyz(structures, path)


def _table(source: Sequence[Atoms] | Any, recursive: bool = True) -> pd.DataFrame:
    """One row per structure of a list of Atoms, or of a project (path, Project, recorder;
    with its sub-projects if ``recursive``)."""
    if isinstance(source, (str, os.PathLike)) or hasattr(source, "path"):
        return structure_frame(source, recursive=recursive)
    structures = list(source)
    if not all(isinstance(a, Atoms) for a in structures):
        raise TypeError("export_table takes a list of ase.Atoms or a project (path or Project)")
    with h5py.File("in-memory.h5", "w", driver="core", backing_store=False) as handle:
        write_structures(handle.create_group("s"), structures)
        return structure_table(handle["s"])


def export_table(
    source: Sequence[Atoms] | Any, path: str | os.PathLike[str], recursive: bool = True
) -> Path:
    """Write the structure table of ``source`` to ``path``.

    The table has one row per structure (see
    :func:`~assyst_nodes.project.queries.structure_frame`).

    Parameters
    ----------
    source : sequence of ase.Atoms or project
        A list of Atoms, or a project or group (a folder path, a pyiron ``Project`` or a
        :class:`~assyst_nodes.project.recorder.ProjectRecorder`).
    path : str or os.PathLike
        The file to write: ``.parquet`` for Apache Parquet (needs pyarrow); any other suffix
        gives a pandas pickle (read with ``pandas.read_pickle``).
    recursive : bool, default True
        For a project: whether its sub-projects count too.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    ImportError
        For a ``.parquet`` path without pyarrow installed.
    TypeError
        If ``source`` is neither a project nor a list of ``ase.Atoms``.
    """
    target = Path(path)
    frame = _table(source, recursive)
    if target.suffix == ".parquet":
        if importlib.util.find_spec("pyarrow") is None:
            raise ImportError(
                f"writing {target} needs pyarrow (pip install pyarrow); "
                "or use a .pkl path for a pandas pickle"
            )
        frame = frame.astype({c: "object" for c in frame.columns if frame[c].dtype == object})
        frame.to_parquet(target)
    else:
        frame.to_pickle(target)
    return target
