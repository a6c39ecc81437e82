"""A store as a table, one row per structure, read without building Atoms
(:func:`structure_table`), and the parents of its structures (:func:`lineage_parents`)."""

from __future__ import annotations

from typing import Any

import h5py
import numpy as np
import pandas as pd
from ase.data import chemical_symbols
from ase.formula import Formula

from assyst_nodes.lineage import LINEAGE, RELAX_CONVERGED, SEED, SPACEGROUP, STEP, UUID

from .columns import _INFO, _RESULTS, _attr_str, _columns, _info_values, _strings, _validate

__all__ = [
    "lineage_parents",
    "structure_table",
]


def _formulas(numbers: np.ndarray, offsets: np.ndarray) -> list[str]:
    """Hill formulas (as ``Atoms.get_chemical_formula()``), one per structure, from counts."""
    n = len(offsets) - 1
    if n == 0:
        return []
    natoms = np.diff(offsets)
    elements, inverse = np.unique(numbers, return_inverse=True)
    owner = np.repeat(np.arange(n), natoms)
    counts = np.bincount(
        owner * len(elements) + inverse.reshape(-1), minlength=n * len(elements)
    ).reshape(n, len(elements))
    unique, which = np.unique(counts, axis=0, return_inverse=True)
    names = []
    for row in unique:
        present = np.flatnonzero(row)
        if present.size == 0:
            names.append("")
            continue
        composition = {chemical_symbols[elements[k]]: int(row[k]) for k in present}
        names.append(Formula.from_dict(composition).format("hill"))
    return [names[k] for k in which.reshape(-1).tolist()]


def _table_column(column: h5py.Group, n: int) -> pd.Series | None:
    """A table column of a scalar info column (nullable dtypes), None for other kinds."""
    kind = _attr_str(column, "kind")
    if kind not in ("str", "int", "float", "bool"):
        return None
    mask = column["mask"][...]
    if kind == "str":
        values = np.empty(n, dtype=object)
        values[:] = _strings(column, 0, n)
        values[~mask] = None
        return pd.Series(values, dtype=object)
    dtype = {"int": "Int64", "float": "Float64", "bool": "boolean"}[kind]
    series = pd.Series(column["values"][...]).astype(dtype)
    series[~mask] = pd.NA
    return series.astype("float64") if kind == "float" else series


def lineage_parents(group: h5py.Group) -> list[str | None]:
    """The last ``lineage`` entry of each structure of the store in ``group``.

    That is the uuid of the structure it was made from, read from the columns (no Atoms built).

    Parameters
    ----------
    group : h5py.Group
        The group holding the store.

    Returns
    -------
    list of str or None
        One parent uuid per structure, in order; None where the lineage is empty or missing.

    Raises
    ------
    ValueError
        If ``group`` is not a complete store of a known format version.
    """
    n, _ = _validate(group)
    for _, column in _columns(group, _INFO):
        if _attr_str(column, "key") != LINEAGE:
            continue
        values, mask = _info_values(column, 0, n)
        return [
            str(v[-1]) if m and isinstance(v, list) and v else None
            for v, m in zip(values, mask, strict=True)
        ]
    return [None] * n


def structure_table(group: h5py.Group) -> pd.DataFrame:
    """One row per structure of the store in ``group``, read from the columns (no Atoms built).

    Parameters
    ----------
    group : h5py.Group
        The group holding the store.

    Returns
    -------
    pandas.DataFrame
        Columns: ``uuid``, ``seed``, ``step``, ``formula`` (Hill, as
        ``get_chemical_formula()``), ``natoms``, ``volume_per_atom`` (Å^3),
        ``energy_per_atom`` (eV/atom, NaN if absent), ``max_force`` (largest per-atom force
        norm, eV/Å, NaN if absent), ``spacegroup``, ``relax_converged`` and every other scalar
        (str, int, float, bool) info key; missing values are None/NA/NaN. An info key clashing
        with a computed column is prefixed ``info:``.

    Raises
    ------
    ValueError
        If ``group`` is not a complete store of a known format version.
    """
    n, offsets = _validate(group)
    natoms = np.diff(offsets)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        volume = np.abs(np.linalg.det(group["cell"][...])) if n else np.zeros(0)
        volume_per_atom = np.where(natoms > 0, volume / natoms, np.nan)
        energy_per_atom = np.full(n, np.nan)
        max_force = np.full(n, np.nan)
        if _RESULTS in group and "energy" in group[_RESULTS]:
            energy = group[_RESULTS]["energy"]
            mask = energy["mask"][...]
            energy_per_atom = np.where(mask & (natoms > 0), energy["values"][...] / natoms, np.nan)
        if _RESULTS in group and "forces" in group[_RESULTS]:
            forces = group[_RESULTS]["forces"]
            mask = forces["mask"][...] & (natoms > 0)
            norms = np.linalg.norm(forces["values"][...], axis=1)
            if mask.any():
                nonempty = natoms > 0
                maxima = np.maximum.reduceat(norms, offsets[:-1][nonempty])
                max_force[nonempty] = maxima
                max_force[~mask] = np.nan

    info: dict[str, pd.Series] = {}
    for _, column in _columns(group, _INFO):
        series = _table_column(column, n)
        if series is not None:
            info[_attr_str(column, "key")] = series
    computed = {
        "formula": _formulas(group["numbers"][...], offsets),
        "natoms": natoms,
        "volume_per_atom": volume_per_atom,
        "energy_per_atom": energy_per_atom,
        "max_force": max_force,
    }
    empty_object = pd.Series([None] * n, dtype=object)
    data: dict[str, Any] = {}
    for key in (UUID, SEED, STEP):
        data[key] = info.pop(key, empty_object)
    data.update(computed)
    data[SPACEGROUP] = info.pop(SPACEGROUP, pd.Series([pd.NA] * n, dtype="Int64"))
    data[RELAX_CONVERGED] = info.pop(RELAX_CONVERGED, pd.Series([pd.NA] * n, dtype="boolean"))
    info.pop(LINEAGE, None)
    for key, series in info.items():
        data[f"info:{key}" if key in data else key] = series
    return pd.DataFrame(
        {key: pd.Series(value).reset_index(drop=True) for key, value in data.items()}
    )
