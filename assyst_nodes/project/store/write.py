"""Writing stores: :func:`write_structures` (at once), :func:`append_structures` (in batches)
and :func:`write_file`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
from ase import Atoms
from ase.stress import full_3x3_to_voigt_6_stress

from .columns import (
    _ABSENT,
    _ARRAYS,
    _DICTIONARY,
    _GROWING,
    _INFO,
    _NUMBERS_DTYPE,
    _REQUIRED,
    _RESULT_SHAPES,
    _RESULTS,
    _STRING,
    _STRING_KINDS,
    FORMAT,
    FORMAT_VERSION,
    LIBVER,
    _attr_str,
    _column_kind,
    _create,
    _extend,
    _filled,
    _info_arrays,
    _info_name,
    _info_values,
    _validate,
)
from .read import _gc_paused

__all__ = [
    "append_structures",
    "write_file",
    "write_structures",
]


def _stress(value: object) -> np.ndarray:
    """Voigt stress (6,) in eV/Å^3 from a (6,) or (3, 3) array."""
    stress = np.asarray(value, dtype=np.float64)
    return full_3x3_to_voigt_6_stress(stress) if stress.shape == (3, 3) else stress.reshape(6)


def _init(group: h5py.Group) -> None:
    """Turn an empty group into an empty store."""
    if _REQUIRED[0] in group or "format" in group.attrs:
        raise ValueError(
            f"{group.file.filename}:{group.name} already holds a store; use append_structures"
        )
    group.attrs["format"] = FORMAT
    group.attrs["format_version"] = FORMAT_VERSION
    _create(group, "numbers", np.zeros(0, _NUMBERS_DTYPE))
    _create(group, "positions", np.zeros((0, 3)))
    _create(group, "offsets", np.zeros(1, np.int64))
    _create(group, "cell", np.zeros((0, 3, 3)))
    _create(group, "pbc", np.zeros((0, 3), bool))
    group.attrs["n_structures"] = 0


def _append_results(
    group: h5py.Group, structures: Sequence[Atoms], natoms: np.ndarray, n_old: int, atoms_old: int
) -> None:
    """Append the calculator-result columns of ``structures``."""
    n = len(structures)
    total = int(natoms.sum())
    calcs = [atoms.calc for atoms in structures]
    all_results = [getattr(calc, "results", None) if calc is not None else None for calc in calcs]
    found: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for name, (shape, per_atom) in _RESULT_SHAPES.items():
        have = [i for i, res in enumerate(all_results) if res and res.get(name) is not None]
        if not have:
            continue
        mask = np.zeros(n, bool)
        mask[have] = True
        given = [all_results[i][name] for i in have]  # type: ignore[index]
        if not per_atom:
            values = np.full((n, *shape), np.nan)
            if name == "stress":
                values[mask] = np.array([_stress(v) for v in given])
            else:
                values[mask] = np.array([float(v) for v in given])
            found[name] = (values, mask)
            continue
        arrays = [np.asarray(v, dtype=np.float64) for v in given]
        if [a.shape for a in arrays] != [(int(k), *shape) for k in natoms[have]]:
            raise ValueError(f"calculator result {name!r} does not have shape (natoms, *{shape})")
        values = np.full((total, *shape), np.nan)
        values[np.repeat(mask, natoms)] = np.concatenate(arrays)
        found[name] = (values, mask)
    existing = set(group[_RESULTS]) if _RESULTS in group else set()
    if not found and not existing:
        return
    section = group.require_group(_RESULTS)
    for name in existing | set(found):
        shape, per_atom = _RESULT_SHAPES[name]
        if name in found:
            values, mask = found[name]
        else:
            values = np.full((total if per_atom else n, *shape), np.nan)
            mask = np.zeros(n, bool)
        if name not in section:
            column = section.create_group(name)
            before = atoms_old if per_atom else n_old
            values = np.concatenate([np.full((before, *shape), np.nan), values])
            mask = np.concatenate([np.zeros(n_old, bool), mask])
        column = section[name]
        _extend(column, "values", values)
        _extend(column, "mask", mask)


def _append_arrays(
    group: h5py.Group, structures: Sequence[Atoms], natoms: np.ndarray, n_old: int, atoms_old: int
) -> None:
    """Append the per-atom array columns other than numbers and positions."""
    n = len(structures)
    total = int(natoms.sum())
    starts = np.concatenate([[0], np.cumsum(natoms)])
    batch: dict[str, list[np.ndarray | None]] = {}
    for i, atoms in enumerate(structures):
        for name, array in atoms.arrays.items():
            if name in ("numbers", "positions"):
                continue
            batch.setdefault(name, [None] * n)[i] = array
    existing = set(group[_ARRAYS]) if _ARRAYS in group else set()
    if not batch and not existing:
        return
    section = group.require_group(_ARRAYS)
    for name in [*batch, *(name for name in existing if name not in batch)]:
        column = section.get(name)
        arrays = batch.get(name, [None] * n)
        present = [a for a in arrays if a is not None]
        if present:
            trailing = {a.shape[1:] for a in present}
            if len(trailing) != 1:
                raise ValueError(f"per-atom array {name!r} has differing shapes {trailing}")
            shape = trailing.pop()
            dtype = np.result_type(*(a.dtype for a in present))
        else:
            shape = column["values"].shape[1:]
            dtype = column["values"].dtype
        if dtype.kind not in "biufc":
            raise ValueError(f"per-atom array {name!r} has unsupported dtype {dtype}")
        if column is not None:
            old = column["values"]
            if old.shape[1:] != shape:
                raise ValueError(f"per-atom array {name!r}: shape {shape} != stored {old.shape}")
            if old.dtype != dtype:
                dtype = np.result_type(old.dtype, dtype)
                if dtype != old.dtype:  # promote the stored column
                    data = old[...].astype(dtype)
                    del column["values"]
                    _create(column, "values", data)
        values = _filled((total, *shape), dtype)
        mask = np.array([a is not None for a in arrays], dtype=bool)
        for i in np.flatnonzero(mask).tolist():
            if len(arrays[i]) != natoms[i]:
                raise ValueError(f"per-atom array {name!r} does not have one row per atom")
            values[starts[i] : starts[i + 1]] = arrays[i]
        if column is None:
            column = section.create_group(name)
            values = np.concatenate([_filled((atoms_old, *shape), dtype), values])
            mask = np.concatenate([np.zeros(n_old, bool), mask])
        _extend(column, "values", values)
        _extend(column, "mask", mask)


def _read_info_column(column: h5py.Group) -> list[object]:
    """All values of a stored info column, ``_ABSENT`` where missing."""
    n = column["mask"].shape[0]
    values, mask = _info_values(column, 0, n)
    return [v if m else _ABSENT for v, m in zip(values, mask, strict=True)]


def _write_strings(column: h5py.Group, strings: np.ndarray) -> None:
    """Append ``strings`` (dtype object) to the dictionary-encoded ``codes`` and ``categories``
    of ``column``; categories are fixed-length UTF-8 bytes, widened when a longer one comes."""
    known = column["categories"][...] if "categories" in column else np.zeros(0, "S1")
    encoded = np.array([s.encode("utf-8") for s in strings.tolist()], dtype=object)
    # categories first: they keep their codes 0..k-1, new strings get k, k+1, ... in order
    codes, uniques = pd.factorize(np.concatenate([known.astype(object), encoded]))
    k = len(known)
    new = uniques[k:].tolist()
    added = np.array(new, dtype=f"S{max([1, *map(len, new)])}")
    _extend(column, "codes", codes[k:].astype(np.int32))
    if "categories" in column and added.dtype.itemsize > known.dtype.itemsize:
        del column["categories"]  # widen: write them all again
        added = np.concatenate([known, added])
    if len(added) or "categories" not in column:
        dtype = added.dtype if "categories" not in column else column["categories"].dtype
        _extend(column, "categories", added.astype(dtype))


def _write_info_column(column: h5py.Group, values: list[object], kind: str) -> None:
    """Append one batch of values (``_ABSENT`` where missing) of kind ``kind`` to ``column``."""
    if kind in _STRING_KINDS and "values" in column:  # format 1: encode what is stored first
        old_values = _read_info_column(column)
        for name in list(column):
            del column[name]
        values = old_values + values
    if kind in _STRING_KINDS:
        column.attrs["strings"] = _DICTIONARY
    for name, data in _info_arrays(values, kind).items():
        if name == "values" and kind in _STRING_KINDS:
            _write_strings(column, data)
            continue
        dtype = _STRING if data.dtype == object else None
        if name == "offsets" and name in column:
            base = column["offsets"][-1]
            data = data[1:] + base
        _extend(column, name, data, dtype)


def _append_info(group: h5py.Group, structures: Sequence[Atoms], n_old: int) -> None:
    """Append the info columns; a column whose kind changes is rewritten as ``json``."""
    n = len(structures)
    batch: dict[str, list[object]] = {}
    for i, atoms in enumerate(structures):
        for key, value in atoms.info.items():
            column = batch.get(key)
            if column is None:
                if not isinstance(key, str) or "\x00" in key:
                    raise ValueError(f"info key {key!r} is not a string without NUL characters")
                column = batch[key] = [_ABSENT] * n
            column[i] = value
    section = group[_INFO] if _INFO in group else group.create_group(_INFO, track_order=True)
    stored = {_attr_str(column, "key"): column for column in section.values()}
    for key in [*batch, *(key for key in stored if key not in batch)]:
        values = batch.get(key, [_ABSENT] * n)
        kind = _column_kind(values)
        column = stored.get(key)
        if column is None:
            column = section.create_group(_info_name(key))
            column.attrs["key"] = key
            column.attrs["kind"] = kind
            _write_info_column(column, [_ABSENT] * n_old + values, kind or "json")
            continue
        old_kind = _attr_str(column, "kind")
        if kind is None or kind == old_kind:
            _write_info_column(column, values, old_kind)
            continue
        old_values = _read_info_column(column)  # kinds differ: rewrite as json
        for name in list(column):
            del column[name]
        if "strings" in column.attrs:
            del column.attrs["strings"]
        column.attrs["kind"] = "json"
        _write_info_column(column, old_values + values, "json")


def append_structures(group: h5py.Group, structures: Sequence[Atoms]) -> None:
    """Append ``structures`` to the store in ``group`` (an empty group becomes a new store).

    The columns are chunked and resizable, so a store grows in batches; ``n_structures`` is
    updated last, so a half-finished append is reported on read (see the module docstring for
    the layout and what is not stored). A column of a store written at once
    (:func:`write_structures`) is written again as a growing one; a store of format version 1
    is upgraded to :data:`FORMAT_VERSION`.

    Parameters
    ----------
    group : h5py.Group
        An empty group, or one holding a store, of a file open for writing (open it with
        :data:`LIBVER`).
    structures : sequence of ase.Atoms
        The structures to append. Calculator results are taken from ``atoms.calc.results`` as
        they are (energy and free energy in eV, forces in eV/Å, stress in eV/Å^3 as Voigt (6,)
        or (3, 3)); no calculation is triggered.

    Raises
    ------
    ValueError
        If ``group`` holds something that is not a complete store of a known format version; if
        an atomic number lies outside 0..32767, an info key is not a string without NUL
        characters, a per-atom result or array does not have one row per atom, or a per-atom
        array has differing shapes, a shape other than the stored one, or a non-numeric dtype.
    """
    with _gc_paused():
        _append(group, structures)


def _append(group: h5py.Group, structures: Sequence[Atoms]) -> None:
    """Implementation of :func:`append_structures`; a store written at once (not
    :data:`_GROWING`) gets each column in one piece."""
    structures = list(structures)
    n = len(structures)
    fresh = "format" not in group.attrs and len(group) == 0
    if fresh and (_GROWING.get() or n == 0):
        _init(group)
        fresh = False
    if fresh:  # written at once: the columns are made below, each with all its rows
        group.attrs["format"] = FORMAT
        n_old, offsets_old = 0, np.zeros(1, np.int64)
    else:
        n_old, offsets_old = _validate(group)
    atoms_old = int(offsets_old[-1])
    if n == 0:
        return
    natoms = np.fromiter((len(atoms) for atoms in structures), np.int64, n)
    numbers = np.concatenate([atoms.arrays["numbers"] for atoms in structures])
    if numbers.size and (numbers.min() < 0 or numbers.max() > np.iinfo(_NUMBERS_DTYPE).max):
        raise ValueError("atomic numbers must lie in 0..32767")
    positions = np.concatenate([atoms.arrays["positions"] for atoms in structures])
    positions = positions.astype(np.float64, copy=False).reshape(-1, 3)
    cell = np.array([atoms.cell.array for atoms in structures], dtype=np.float64)
    pbc = np.array([atoms.pbc for atoms in structures], dtype=bool)
    _extend(group, "numbers", numbers.astype(_NUMBERS_DTYPE))
    _extend(group, "positions", positions)
    offsets = atoms_old + np.cumsum(natoms)
    _extend(group, "offsets", np.concatenate([[0], offsets]) if fresh else offsets)
    _extend(group, "cell", cell)
    _extend(group, "pbc", pbc)
    _append_results(group, structures, natoms, n_old, atoms_old)
    _append_arrays(group, structures, natoms, n_old, atoms_old)
    _append_info(group, structures, n_old)
    group.attrs["format_version"] = FORMAT_VERSION  # a version-1 store's strings are encoded now
    group.attrs["n_structures"] = n_old + n  # last: marks the append as complete


def write_structures(group: h5py.Group, structures: Sequence[Atoms]) -> None:
    """Write ``structures`` as a new store into the empty ``group`` (one chunk per column).

    Use :func:`append_structures` to grow a store in batches.

    Parameters
    ----------
    group : h5py.Group
        An empty group of a file open for writing (open it with :data:`LIBVER`).
    structures : sequence of ase.Atoms
        The structures to write (see :func:`append_structures` for what is taken from them).

    Raises
    ------
    ValueError
        If ``group`` is not empty (e.g. already holds a store), or a structure cannot be
        stored (see :func:`append_structures`).
    """
    if "format" in group.attrs or len(group):
        raise ValueError(
            f"{group.file.filename}:{group.name} already holds a store; use append_structures"
        )
    token = _GROWING.set(False)
    try:
        append_structures(group, structures)
    finally:
        _GROWING.reset(token)


def write_file(path: str | Path, structures: Sequence[Atoms]) -> None:
    """Write ``structures`` to a new HDF5 file at ``path`` (its root group is the store).

    Parameters
    ----------
    path : str or pathlib.Path
        The file to write; one already there is overwritten. Read it with :func:`read_file`.
    structures : sequence of ase.Atoms
        The structures to write (see :func:`append_structures` for what is taken from them).

    Raises
    ------
    ValueError
        If a structure cannot be stored (see :func:`append_structures`).
    """
    with h5py.File(path, "w", libver=LIBVER) as handle:
        write_structures(handle, structures)
