"""What the figures show, per structure: :func:`features` (volume and energy per atom, minimum
distance, size, cell, concentrations, space group) and the column names and labels."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from ase import Atoms
from ase.formula import Formula

from ..stages.filter.geometry import _pairs_within

if TYPE_CHECKING:
    pass


__all__ = [
    "COLUMNS",
    "MAX_GROUPS",
    "SCATTER_LIMIT",
    "features",
]


COLUMNS = (
    "uuid",
    "step",
    "formula",
    "natoms",
    "volume_per_atom",
    "energy_per_atom",
    "max_force",
    "min_distance",
    "a",
    "b",
    "c",
    "alpha",
    "beta",
    "gamma",
    "spacegroup",
)

#: Up to this many points a scatter is drawn, above it a hexbin.
SCATTER_LIMIT = 5000
#: At most this many groups are drawn for ``by``; the rest are merged into "other".
MAX_GROUPS = 10

_FIRST_CUTOFF = 3.0  # Å
_LAST_CUTOFF = 30.0  # Å

_LABELS = {
    "volume_per_atom": "volume (Å³/atom)",
    "energy_per_atom": "energy (eV/atom)",
    "min_distance": "shortest distance (Å)",
    "natoms": "atoms per structure",
    "max_force": "largest force (eV/Å)",
    "a": "a (Å)",
    "b": "b (Å)",
    "c": "c (Å)",
    "alpha": "α (degrees)",
    "beta": "β (degrees)",
    "gamma": "γ (degrees)",
}
_NOUNS = {
    "volume_per_atom": "volumes",
    "energy_per_atom": "energies",
    "min_distance": "distances",
    "natoms": "structures",
    "max_force": "forces",
    "a": "cells",
    "b": "cells",
    "c": "cells",
    "alpha": "cells",
    "beta": "cells",
    "gamma": "cells",
}


# --------------------------------------------------------------------------------------------
# features


def _min_distance(structure: Atoms) -> float:
    """Shortest interatomic distance (Å) over periodic images, own images included.

    The cutoff starts at 3 Å and doubles until a pair is found; NaN when none is within 30 Å
    (or the cell is degenerate)."""
    if len(structure) == 0:
        return math.nan
    cutoff = _FIRST_CUTOFF
    while True:
        try:
            _, _, d = _pairs_within(structure, cutoff)
        except ValueError:
            return math.nan
        if len(d):
            return float(d.min())
        if cutoff >= _LAST_CUTOFF:
            return math.nan
        cutoff = min(2.0 * cutoff, _LAST_CUTOFF)


def _row(structure: Atoms, min_distance: bool) -> dict[str, Any]:
    """One row of :func:`features` (without the concentrations) and the element counts."""
    natoms = len(structure)
    results: dict[str, Any] = {}
    calc = structure.calc
    if calc is not None:
        results = getattr(calc, "results", None) or {}
    energy = results.get("energy")
    forces = results.get("forces")
    energy_per_atom = float(energy) / natoms if energy is not None and natoms else math.nan
    max_force = math.nan
    if forces is not None and natoms:
        forces = np.asarray(forces, dtype=float).reshape(-1, 3)
        if len(forces):
            max_force = float(np.sqrt((forces**2).sum(axis=1)).max())
    volume = abs(float(np.linalg.det(structure.cell.array)))
    with np.errstate(divide="ignore", invalid="ignore"):
        a, b, c, alpha, beta, gamma = (float(v) for v in structure.cell.cellpar())
    info = structure.info
    return {
        "uuid": info.get("uuid"),
        "step": info.get("step"),
        "formula": structure.get_chemical_formula(),
        "natoms": natoms,
        "volume_per_atom": volume / natoms if natoms else math.nan,
        "energy_per_atom": energy_per_atom,
        "max_force": max_force,
        "min_distance": _min_distance(structure) if min_distance else math.nan,
        "a": a,
        "b": b,
        "c": c,
        "alpha": alpha,
        "beta": beta,
        "gamma": gamma,
        "spacegroup": info.get("spacegroup", math.nan),
    }


def features(structures: Iterable[Atoms] | pd.DataFrame, min_distance: bool = True) -> pd.DataFrame:
    """One row per structure: the quantities the figures show.

    ``atoms.calc.results`` is read for energies and forces; nothing is ever calculated.

    Parameters
    ----------
    structures : iterable of ase.Atoms or pandas.DataFrame
        The structures (a generator is consumed once); a DataFrame is returned unchanged.
    min_distance : bool, default True
        Compute the ``min_distance`` column, the slowest one; ``False``: NaN there.

    Returns
    -------
    pandas.DataFrame
        Columns (:data:`COLUMNS`, in order): ``uuid``, ``step`` (from ``atoms.info``,
        ``None`` if absent), ``formula``, ``natoms``, ``volume_per_atom`` (Å³/atom),
        ``energy_per_atom`` (eV/atom, NaN without calculator results), ``max_force`` (largest
        per-atom force norm, eV/Å, NaN if absent), ``min_distance`` (shortest interatomic
        distance over periodic images, Å; NaN if none within 30 Å, or not computed with
        ``min_distance=False``), ``a``, ``b``, ``c`` (Å), ``alpha``, ``beta``, ``gamma``
        (degrees), ``spacegroup`` (``info["spacegroup"]`` or NaN); then ``x_<El>``, the atomic
        fraction of each element (sorted by symbol).

    Raises
    ------
    TypeError
        If ``structures`` is a single :class:`ase.Atoms` (wrap it in a list) or yields
        something else than :class:`ase.Atoms`.
    """
    if isinstance(structures, pd.DataFrame):
        return structures
    if isinstance(structures, Atoms):
        raise TypeError("expected an iterable of ase.Atoms, got a single Atoms; wrap it in a list")
    rows: list[dict[str, Any]] = []
    counts: list[dict[str, int]] = []
    elements: set[str] = set()
    for position, structure in enumerate(structures):
        if not isinstance(structure, Atoms):
            raise TypeError(
                f"structure {position} is a {type(structure).__name__}, expected ase.Atoms"
            )
        rows.append(_row(structure, min_distance))
        symbols, n = np.unique(structure.get_chemical_symbols(), return_counts=True)
        count = dict(zip(symbols.tolist(), n.tolist(), strict=True))
        counts.append(count)
        elements.update(count)
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    frame["natoms"] = frame["natoms"].astype(int)
    for column in COLUMNS[4:14]:
        frame[column] = frame[column].astype(float)
    for element in sorted(elements):
        frame[f"x_{element}"] = np.array(
            [c.get(element, 0) / max(r["natoms"], 1) for c, r in zip(counts, rows, strict=True)],
            dtype=float,
        )
    return frame


def _table(
    data: Iterable[Atoms] | pd.DataFrame, required: Sequence[str], figure: str
) -> pd.DataFrame:
    """``data`` as a :func:`features` table; ``ValueError`` naming a missing required column."""
    if isinstance(data, pd.DataFrame):
        for column in required:
            if column not in data.columns:
                raise ValueError(
                    f"{figure}: the DataFrame has no column {column!r}; call "
                    f"features(structures) to get a table with it"
                )
        return data
    return features(data, min_distance="min_distance" in required)


def _concentrations(frame: pd.DataFrame, figure: str) -> pd.DataFrame:
    """The ``x_<El>`` columns of ``frame``, else computed from its ``formula`` column."""
    columns = [c for c in frame.columns if isinstance(c, str) and c.startswith("x_")]
    if columns:
        return frame[columns]
    if "formula" not in frame.columns:
        raise ValueError(
            f"{figure}: the DataFrame has no 'x_<El>' concentration columns and no 'formula' "
            f"column; call features(structures) to get a table with them"
        )
    parsed: dict[str, dict[str, int]] = {}
    for formula in pd.unique(frame["formula"].dropna()):
        parsed[formula] = Formula(str(formula)).count()
    elements = sorted({e for count in parsed.values() for e in count})
    table = {}
    for element in elements:
        fractions = {
            f: count.get(element, 0) / max(sum(count.values()), 1) for f, count in parsed.items()
        }
        table[f"x_{element}"] = frame["formula"].map(fractions).astype(float)
    return pd.DataFrame(table, index=frame.index)
