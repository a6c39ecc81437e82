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

__all__ = ["PACEMAKER_SUFFIXES", "TABLE_SUFFIXES", "export_extxyz", "export_format", "export_table"]

EXTXYZ_SUFFIXES = (".extxyz", ".xyz")
"""File endings of extended XYZ."""

PACEMAKER_SUFFIXES = (".pkl.gzip", ".pckl.gzip", ".pkl.gz", ".pckl.gz")
"""File endings of pacemaker's table (always gzip-compressed)."""

TABLE_SUFFIXES = {
    ".pkl": None,
    ".pickle": None,
    ".pkl.gz": "gzip",
    ".pickle.gz": "gzip",
    ".parquet": None,
}
"""File endings of the structure table, with the compression each means."""


def _ending(path: str | os.PathLike[str], endings: Sequence[str]) -> str | None:
    """The longest of ``endings`` that the name of ``path`` ends with (case-insensitive)."""
    name = Path(path).name.lower()
    found = [e for e in endings if name.endswith(e) and len(name) > len(e)]
    return max(found, key=len) if found else None


def export_format(
    path: str | os.PathLike[str], labels: bool = False, pacemaker: bool = False
) -> str:
    """The format an export writes to ``path``, checked against its name.

    Parameters
    ----------
    path : str or os.PathLike
        The file to write.
    labels : bool, default False
        Labelled extxyz for fitting codes is asked for (``--labels-prefix``).
    pacemaker : bool, default False
        pacemaker's table is asked for (``--pacemaker``).

    Returns
    -------
    str
        ``"pacemaker"``, ``"labelled_extxyz"``, ``"extxyz"`` or ``"table"``.

    Raises
    ------
    ValueError
        Both ``labels`` and ``pacemaker``, or a name whose ending does not fit the format
        (e.g. ``x.pkl.gzip``, pacemaker's name, without ``pacemaker``; ``x.xyz`` with it;
        ``x.csv``): the message names the file and the endings that fit.
    """
    if labels and pacemaker:
        raise ValueError("--labels-prefix (extxyz) and --pacemaker (table): choose one format")
    if pacemaker:
        if _ending(path, PACEMAKER_SUFFIXES) is None:
            raise ValueError(
                f"pacemaker's table is a gzip pickle: {path} should end with one of "
                f"{', '.join(PACEMAKER_SUFFIXES)}"
            )
        return "pacemaker"
    if _ending(path, EXTXYZ_SUFFIXES) is not None:
        return "labelled_extxyz" if labels else "extxyz"
    table = _ending(path, tuple(TABLE_SUFFIXES))
    if table is None and _ending(path, PACEMAKER_SUFFIXES):
        raise ValueError(
            f"{path} is named like pacemaker's table: add --pacemaker (write_pacemaker) to "
            "write it, or name the structure table .pkl.gz"
        )
    if labels:
        raise ValueError(
            f"labels for fitting codes are written as extended XYZ: {path} should end with "
            f"{' or '.join(EXTXYZ_SUFFIXES)} (or use --pacemaker for pacemaker's table)"
        )
    if table is None:
        raise ValueError(
            f"cannot tell the format of {path}: write structures as extxyz "
            f"({', '.join(EXTXYZ_SUFFIXES)}), the structure table as "
            f"{', '.join(TABLE_SUFFIXES)}, or pacemaker's table with --pacemaker "
            f"({PACEMAKER_SUFFIXES[0]})"
        )
    return "table"


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
        The file to write: ``.parquet`` for Apache Parquet (needs pyarrow), ``.pkl`` or
        ``.pickle`` for a pandas pickle, ``.pkl.gz`` or ``.pickle.gz`` for a gzip-compressed
        one (see :data:`TABLE_SUFFIXES`). String columns are plain
        ``object``, so pandas 2 reads a pickle that pandas 3 wrote.
    recursive : bool, default True
        For a project: whether its sub-projects count too.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    ValueError
        A path with another ending (the message names those that fit).
    ImportError
        For a ``.parquet`` path without pyarrow installed.
    TypeError
        If ``source`` is neither a project nor a list of ``ase.Atoms``.
    """
    target = Path(path)
    ending = _ending(target, tuple(TABLE_SUFFIXES))
    if ending is None:
        fmt = export_format(target)  # raises for a name of no format, naming those that fit
        raise ValueError(
            f"{target} is named for {fmt}, not for the structure table: write the table as "
            f"{', '.join(TABLE_SUFFIXES)} (or extxyz with export_extxyz)"
        )
    if ending == ".parquet" and importlib.util.find_spec("pyarrow") is None:
        raise ImportError(
            f"writing {target} needs pyarrow (pip install pyarrow); "
            "or use a .pkl path for a pandas pickle"
        )
    frame = _table(source, recursive)
    frame = frame.astype({c: object for c in frame.columns if _is_text(frame[c])})
    frame.columns = pd.Index([str(c) for c in frame.columns], dtype=object)
    if ending == ".parquet":
        frame.to_parquet(target)
    else:
        frame.to_pickle(target, compression=TABLE_SUFFIXES[ending])
    return target


def _is_text(column: pd.Series) -> bool:
    """Whether ``column`` holds text (pandas 3's ``str`` dtype or ``object``)."""
    return column.dtype == object or pd.api.types.is_string_dtype(column.dtype)
