"""Columnar HDF5 store for lists of :class:`ase.Atoms`.

A store is one HDF5 group; every quantity is one column (dataset) over all structures, so a
store of 100 000 structures is written and read with a few dozen h5py calls, not millions.

Layout of a store group (``n`` structures, ``N`` atoms in total)::

    attrs: format = "assyst_nodes.structures", format_version = 2, n_structures = n
    numbers    (N,)       int16     atomic numbers, all structures concatenated
    positions  (N, 3)     float64   Cartesian positions, Å
    offsets    (n + 1,)   int64     structure i owns atoms offsets[i]:offsets[i + 1]
    cell       (n, 3, 3)  float64   cell vectors, Å
    pbc        (n, 3)     bool      periodic boundary conditions
    results/<name>/values, mask     calculator results: energy (n,) and free_energy (n,) in eV,
                                    forces (N, 3) in eV/Å, stress (n, 6) Voigt in eV/Å^3;
                                    NaN where a structure has no such result, ``mask`` (n,)
                                    says which structures have it
    arrays/<name>/values, mask      other per-atom arrays of ``Atoms.arrays`` (momenta, tags,
                                    initial_magmoms, ...), (N, ...); NaN/0 where absent
    info/<quoted key>/values, mask  one column per ``Atoms.info`` key; attrs ``key`` (the key
                                    itself) and ``kind``:
                                    ``str``, ``int`` (int64), ``float`` (float64), ``bool``,
                                    ``str_list`` (flattened strings plus ``offsets`` (n + 1,),
                                    e.g. ``lineage``) or ``json`` (anything else, encoded with
                                    :mod:`ase.io.jsonio`, variable-length UTF-8)
    info/<quoted key>/codes, categories
                                    the strings of a ``str`` or ``str_list`` column instead of
                                    ``values`` (attr ``strings = "dictionary"``): ``categories``
                                    holds each distinct string once, as fixed-length UTF-8
                                    bytes, ``codes`` (int32) the category of each value. The
                                    provenance strings (step, seed, lineage) repeat, and
                                    fixed-length bytes avoid HDF5's ~60 bytes of heap per
                                    variable-length string; format version 1 stored them as
                                    ``values`` (variable-length), still read.

Columns are chunked and resizable, so :func:`append_structures` grows a store in batches.
``n_structures`` is updated last: a half-finished append leaves datasets longer than it, which
:func:`read_structures` reports as an inconsistency. A store written at once
(:func:`write_structures`) has one chunk per column, as long as the column (up to 1 MiB): a
small store then costs a few hundred bytes per column, not the 8 KiB chunks of a growing one
(:func:`append_structures`). Open files with :data:`LIBVER` (HDF5's newest object formats,
as pyiron's own writer does): their chunk indexes take far less room than the oldest format's.

Not stored: constraints, ``celldisp``, calculator parameters and any calculator result other
than energy, free energy, forces and stress. Results are taken from ``atoms.calc.results`` as
they are (no calculation is triggered, stale results are not detected) and read back as a
:class:`~ase.calculators.singlepoint.SinglePointCalculator`. Info values keep their type (int,
float, str, bool, list of str); ``json`` values come back as :func:`ase.io.jsonio.decode` gives
them (tuples become lists, dict keys that look like ints become ints). A per-atom array whose
dtype changes between structures is stored in the promoted dtype.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from itertools import chain, pairwise
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote

import h5py
import numpy as np
import pandas as pd
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator
from ase.cell import Cell
from ase.data import chemical_symbols
from ase.formula import Formula
from ase.io.jsonio import decode, encode
from ase.stress import full_3x3_to_voigt_6_stress

from assyst_nodes.lineage import LINEAGE, RELAX_CONVERGED, SEED, SPACEGROUP, STEP, UUID

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "LIBVER",
    "append_structures",
    "compact",
    "lineage_parents",
    "read_file",
    "read_structures",
    "structure_table",
    "write_file",
    "write_structures",
]

FORMAT: Final = "assyst_nodes.structures"
"""Value of the ``format`` attribute of a store group."""
FORMAT_VERSION: Final = 2
"""Version of the layout written (2: dictionary-encoded strings); stores of a newer version are
refused on read, version 1 is read and upgraded when appended to."""

_REQUIRED: Final = ("numbers", "positions", "offsets", "cell", "pbc")
_RESULTS: Final = "results"
_ARRAYS: Final = "arrays"
_INFO: Final = "info"
# name -> trailing shape; per-atom results have ``per_atom`` True
_RESULT_SHAPES: Final[dict[str, tuple[tuple[int, ...], bool]]] = {
    "energy": ((), False),
    "free_energy": ((), False),
    "forces": ((3,), True),
    "stress": ((6,), False),
}
_STRING: Final = h5py.string_dtype("utf-8")
_DICTIONARY: Final = "dictionary"
"""Value of the ``strings`` attribute of an info column whose strings are dictionary-encoded."""
_STRING_KINDS: Final = ("str", "str_list")
_NUMBERS_DTYPE: Final = np.int16
_ABSENT: Final = object()
_CHUNK_MIN: Final = 8 * 1024
_CHUNK_MAX: Final = 1024 * 1024
_COMPACT_MAX: Final = 16 * 1024
"""Largest fixed-size column (bytes) stored compact in a store written at once."""
_GROWING: ContextVar[bool] = ContextVar("growing", default=True)
"""Whether the columns being created belong to a store that grows in batches (8 KiB to 1 MiB
chunks) or to one written at once (one chunk as long as the column, up to 1 MiB)."""
LIBVER: Final = "latest"
"""HDF5 format bounds to open store files with (h5py's ``libver``): the newest object formats,
as pyiron's own HDF5 writer (h5io_browser) uses."""


# ----------------------------------------------------------------------------------------------
# low-level column helpers


def compact() -> Any:
    """An HDF5 dataset-creation property list with the compact layout.

    The data live inside the dataset's object header (at most ~64 KiB; checksummed with the header
    in HDF5's newest format), with no chunk index and no data block of their own.

    Returns
    -------
    h5py.h5p.PropDCID
        The property list, to pass as ``dcpl`` to ``h5py.Group.create_dataset``.
    """
    layout = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    layout.set_layout(h5py.h5d.COMPACT)
    return layout


def _chunks(shape: tuple[int, ...], itemsize: int) -> tuple[int, ...]:
    """Chunk shape of a resizable dataset: whole rows, up to 1 MiB per chunk; at least 8 KiB
    in a growing store (see :data:`_GROWING`), else the column's own length."""
    row = max(1, int(np.prod(shape[1:], dtype=np.int64)) * itemsize)
    smallest = _CHUNK_MIN if _GROWING.get() else row
    target = min(max(shape[0] * row, smallest), _CHUNK_MAX)
    return (max(1, target // row), *shape[1:])


def _create(
    parent: h5py.Group, name: str, data: np.ndarray, dtype: Any = None
) -> h5py.Dataset:
    """A dataset holding ``data``.

    In a growing store (:data:`_GROWING`) it is chunked (8 KiB to 1 MiB) and resizable along
    axis 0. In a store written at once, a fixed-size column of at most
    :data:`_COMPACT_MAX` bytes is *compact* (its data inside its object header, which HDF5's
    newest format checksums), a larger one has one chunk as long as the column (up to 1 MiB).
    Chunked fixed-size columns carry a Fletcher-32 checksum per chunk, so damaged bytes fail on
    read instead of reading wrong. Chunked fixed-length byte strings (e.g. uuids) are
    compressed (byte shuffle and gzip level 1: a uuid's 36 hex characters take about 18 bytes,
    at ~0.6 µs each to write)."""
    dtype = data.dtype if dtype is None else dtype
    vlen = h5py.check_vlen_dtype(np.dtype(dtype)) is not None or np.dtype(dtype).kind == "O"
    itemsize = 16 if vlen else np.dtype(dtype).itemsize
    text = not vlen and np.dtype(dtype).kind == "S"
    if not _GROWING.get() and not vlen and 0 < data.size * itemsize <= _COMPACT_MAX:
        dataset = parent.create_dataset(name, shape=data.shape, dtype=dtype, dcpl=compact())
    else:
        dataset = parent.create_dataset(
            name,
            shape=data.shape,
            dtype=dtype,
            maxshape=(None, *data.shape[1:]),
            chunks=_chunks(data.shape, itemsize),
            fletcher32=not vlen,
            shuffle=text,
            compression="gzip" if text else None,
            compression_opts=1 if text else None,
        )
    dataset.attrs["TITLE"] = "ndarray"  # what pyiron's (h5io's) readers expect of an array
    if len(data):
        dataset[...] = data
    return dataset


def _extend(parent: h5py.Group, name: str, data: np.ndarray, dtype: Any = None) -> None:
    """Append ``data`` along axis 0 to dataset ``name`` (created if missing; a column of a store
    written at once is made anew, as a growing one, to take more)."""
    if name not in parent:
        _create(parent, name, data, dtype)
        return
    dataset = parent[name]
    if not len(data):
        return
    if dataset.maxshape[0] is not None:  # fixed size: write it again, resizable
        old = dataset[...]
        dtype = dataset.dtype
        del parent[name]
        token = _GROWING.set(True)
        try:
            _create(parent, name, np.concatenate([old, data]).astype(dtype, copy=False), dtype)
        finally:
            _GROWING.reset(token)
        return
    start = dataset.shape[0]
    dataset.resize(start + len(data), axis=0)
    dataset[start:] = data


def _filled(shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """An array of ``shape`` holding the 'missing' value of ``dtype`` (NaN, 0 or False)."""
    if dtype.kind in "fc":
        return np.full(shape, np.nan, dtype)
    return np.zeros(shape, dtype)


def _info_name(key: str) -> str:
    """HDF5 name of the column of info ``key`` (percent-quoted, injective)."""
    name = quote(key, safe=" ")
    if name.startswith("."):
        name = "%2E" + name[1:]
    return name or "%"


# ----------------------------------------------------------------------------------------------
# info values


def _kind(value: object) -> str:
    """Storage kind of one info value."""
    if isinstance(value, bool | np.bool_):
        return "bool"
    if isinstance(value, int | np.integer):
        return "int" if -(2**63) <= int(value) < 2**63 else "json"
    if isinstance(value, float | np.floating):
        return "float"
    if isinstance(value, str):
        return "str" if "\x00" not in value else "json"
    if type(value) is list and all(isinstance(x, str) and "\x00" not in x for x in value):
        return "str_list"
    return "json"


def _column_kind(values: list[object]) -> str | None:
    """Common kind of the present values of a column (``json`` if they differ), None if none."""
    present = [v for v in values if v is not _ABSENT]
    if not present:
        return None
    types = set(map(type, present))
    if len(types) == 1:  # the usual case, decided with C-level passes over the column
        type_ = types.pop()
        if type_ is bool or type_ is np.bool_:
            return "bool"
        if type_ is float or issubclass(type_, np.floating):
            return "float"
        if type_ is int or issubclass(type_, np.integer):
            return "int" if -(2**63) <= int(min(present)) and int(max(present)) < 2**63 else "json"
        if issubclass(type_, str):
            return "str" if "\x00" not in "".join(present) else "json"  # type: ignore[arg-type]
        if type_ is list:
            flat = list(chain.from_iterable(present))  # type: ignore[arg-type]
            if all(issubclass(t, str) for t in set(map(type, flat))):
                return "str_list" if "\x00" not in "".join(flat) else "json"
    kinds = {_kind(v) for v in present}
    return kinds.pop() if len(kinds) == 1 else "json"


def _info_arrays(values: list[object], kind: str) -> dict[str, np.ndarray]:
    """The datasets (``values``, ``mask`` and maybe ``offsets``) of one batch of an info column;
    the strings of ``str`` and ``str_list`` columns are ``values`` of dtype object here (see
    :func:`_write_strings`)."""
    mask = np.fromiter((v is not _ABSENT for v in values), bool, len(values))
    if kind == "str":
        data = np.empty(len(values), dtype=object)
        data[:] = [v if v is not _ABSENT else "" for v in values]
        return {"values": data, "mask": mask}
    if kind == "int":
        data = np.array([int(v) if v is not _ABSENT else 0 for v in values], dtype=np.int64)
        return {"values": data, "mask": mask}
    if kind == "float":
        floats = [float(v) if v is not _ABSENT else np.nan for v in values]
        return {"values": np.array(floats, dtype=np.float64), "mask": mask}
    if kind == "bool":
        data = np.array([bool(v) if v is not _ABSENT else False for v in values], dtype=bool)
        return {"values": data, "mask": mask}
    if kind == "str_list":
        lists = [v if v is not _ABSENT else [] for v in values]
        lengths = np.fromiter((len(v) for v in lists), np.int64, len(lists))  # type: ignore[arg-type]
        flat = np.empty(int(lengths.sum()), dtype=object)
        flat[:] = [x for v in lists for x in v]  # type: ignore[union-attr]
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        return {"values": flat, "offsets": offsets, "mask": mask}
    data = np.empty(len(values), dtype=object)
    data[:] = [encode(v) if v is not _ABSENT else "" for v in values]
    return {"values": data, "mask": mask}


def _encoded(column: h5py.Group) -> bool:
    """Whether the strings of ``column`` are dictionary-encoded (``codes``, ``categories``)."""
    return column.attrs.get("strings") in (_DICTIONARY, _DICTIONARY.encode())


def _strings(column: h5py.Group, start: int, stop: int) -> list[str]:
    """Strings ``start:stop`` of a ``str``, ``str_list`` or ``json`` column."""
    if not _encoded(column):
        return column["values"].asstr()[start:stop].tolist()
    codes = column["codes"][start:stop]
    if codes.size == 0:
        return []
    # only the categories used: a contiguous range (unique strings get rising codes)
    low, high = int(codes.min()), int(codes.max()) + 1
    if low < 0 or high > column["categories"].shape[0]:
        raise ValueError(
            f"structure store {column.file.filename}:{column.name}: codes {low}..{high - 1} "
            f"point outside its {column['categories'].shape[0]} categories"
        )
    used, inverse = np.unique(codes, return_inverse=True)  # decode each one once
    raw = column["categories"][low:high][used - low]
    categories = np.array([b.decode("utf-8") for b in raw.tolist()], dtype=object)
    return categories[inverse.reshape(-1)].tolist()


def _info_values(column: h5py.Group, start: int, stop: int) -> tuple[list[Any], np.ndarray]:
    """Python values (one per structure in ``start:stop``) and presence mask of an info column."""
    kind = _attr_str(column, "kind")
    mask = column["mask"][start:stop]
    if kind in ("str", "json"):
        strings = _strings(column, start, stop)
        if kind == "str":
            return strings, mask
        return [
            decode(s, always_array=False) if m else None for s, m in zip(strings, mask, strict=True)
        ], mask
    if kind == "str_list":
        offsets = column["offsets"][start : stop + 1]
        flat = _strings(column, int(offsets[0]), int(offsets[-1])) if len(offsets) else []
        local = (offsets - (offsets[0] if len(offsets) else 0)).tolist()
        return [flat[a:b] for a, b in pairwise(local)], mask
    return column["values"][start:stop].tolist(), mask


def _attr_str(obj: h5py.HLObject, name: str) -> str:
    """A string attribute (h5py may hand back bytes)."""
    value = obj.attrs[name]
    return value.decode() if isinstance(value, bytes) else str(value)


# ----------------------------------------------------------------------------------------------
# validation


def _fail(group: h5py.Group, message: str) -> ValueError:
    """The error for a broken store group."""
    return ValueError(f"structure store {group.file.filename}:{group.name}: {message}")


def _length(group: h5py.Group, parent: h5py.Group, name: str, expected: int) -> h5py.Dataset:
    """Dataset ``name`` of ``parent``, checked to exist and to have ``expected`` rows."""
    if name not in parent or not isinstance(parent[name], h5py.Dataset):
        raise _fail(group, f"dataset {parent.name}/{name} is missing")
    dataset = parent[name]
    if dataset.shape[:1] != (expected,):
        raise _fail(
            group,
            f"dataset {dataset.name} has shape {dataset.shape}, expected {expected} rows",
        )
    return dataset


def _columns(group: h5py.Group, section: str) -> Iterator[tuple[str, h5py.Group]]:
    """(name, column group) of one section (``results``, ``arrays`` or ``info``)."""
    if section not in group:
        return
    for name, column in group[section].items():
        if not isinstance(column, h5py.Group):
            raise _fail(group, f"{column.name} is not a column group")
        yield name, column


def _validate(group: h5py.Group) -> tuple[int, np.ndarray]:
    """Check format, version and the lengths of every dataset; return (n, offsets)."""
    if group.attrs.get("format") is None:
        raise _fail(group, "not a structure store (no 'format' attribute)")
    if _attr_str(group, "format") != FORMAT:
        raise _fail(group, f"format is {_attr_str(group, 'format')!r}, expected {FORMAT!r}")
    version = group.attrs.get("format_version")
    if version is None:
        raise _fail(group, "no 'format_version' attribute")
    if int(version) > FORMAT_VERSION:
        raise _fail(group, f"format version {int(version)} is newer than {FORMAT_VERSION}")
    if "n_structures" not in group.attrs:
        raise _fail(group, "no 'n_structures' attribute (half-written store?)")
    n = int(group.attrs["n_structures"])
    missing = [name for name in _REQUIRED if name not in group]
    if missing:
        raise _fail(group, f"required dataset(s) {', '.join(missing)} missing")
    offsets = _length(group, group, "offsets", n + 1)[...].astype(np.int64)
    if offsets[0] != 0 or np.any(np.diff(offsets) < 0):
        raise _fail(group, "offsets do not start at 0 or are not non-decreasing")
    n_atoms = int(offsets[-1])
    _length(group, group, "numbers", n_atoms)
    if _length(group, group, "positions", n_atoms).shape[1:] != (3,):
        raise _fail(group, "positions are not (N, 3)")
    if _length(group, group, "cell", n).shape[1:] != (3, 3):
        raise _fail(group, "cell is not (n, 3, 3)")
    if _length(group, group, "pbc", n).shape[1:] != (3,):
        raise _fail(group, "pbc is not (n, 3)")
    for name, column in _columns(group, _RESULTS):
        if name not in _RESULT_SHAPES:
            raise _fail(group, f"unknown calculator result {name!r}")
        shape, per_atom = _RESULT_SHAPES[name]
        _length(group, column, "mask", n)
        values = _length(group, column, "values", n_atoms if per_atom else n)
        if values.shape[1:] != shape:
            raise _fail(group, f"{values.name} has shape {values.shape}, expected (.., {shape})")
    for _, column in _columns(group, _ARRAYS):
        _length(group, column, "mask", n)
        _length(group, column, "values", n_atoms)
    for _, column in _columns(group, _INFO):
        if "key" not in column.attrs or "kind" not in column.attrs:
            raise _fail(group, f"info column {column.name} lacks its 'key'/'kind' attributes")
        kind = _attr_str(column, "kind")
        _length(group, column, "mask", n)
        if kind not in ("str", "int", "float", "bool", "json", "str_list"):
            raise _fail(group, f"info column {column.name} has unknown kind {kind!r}")
        rows = n
        if kind == "str_list":
            rows = int(_length(group, column, "offsets", n + 1)[-1])
        if not _encoded(column):
            _length(group, column, "values", rows)
            continue
        if kind not in _STRING_KINDS:
            raise _fail(group, f"info column {column.name} of kind {kind!r} is not strings")
        _length(group, column, "codes", rows)
        if "categories" not in column:  # codes past the categories are caught on read
            raise _fail(group, f"dataset {column.name}/categories is missing")
    return n, offsets


# ----------------------------------------------------------------------------------------------
# writing


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


# ----------------------------------------------------------------------------------------------
# reading


class _Factory:
    """Builds Atoms and SinglePointCalculators fast, by filling the attribute dict directly.

    ``Atoms.__init__`` and ``SinglePointCalculator.__init__`` (which copies the atoms) cost
    ~40 and ~100 µs; setting the attribute dict costs about 1 µs. If ase ever grows attributes
    this class does not know, the ordinary constructors are used instead.
    """

    _ATOMS_KEYS: Final = frozenset(
        {"_cellobj", "_pbc", "arrays", "_celldisp", "_constraints", "info", "_calc"}
    )
    _CALC_KEYS: Final = frozenset(
        {
            "atoms",
            "results",
            "parameters",
            "_directory",
            "prefix",
            "get_spin_polarized",
            "use_cache",
        }
    )

    def __init__(self) -> None:
        template = Atoms("H", cell=np.eye(3), pbc=True)
        calc = SinglePointCalculator(template, energy=0.0)
        self.fast_atoms = set(template.__dict__) == self._ATOMS_KEYS
        self.fast_calc = self.fast_atoms and set(calc.__dict__) == self._CALC_KEYS
        self.calc_template = {
            key: value
            for key, value in calc.__dict__.items()
            if key not in ("atoms", "results", "parameters", "get_spin_polarized")
        }
        self.parameters_type = type(calc.parameters)

    def atoms(
        self, arrays: dict[str, np.ndarray], cell: np.ndarray, pbc: np.ndarray, info: dict
    ) -> Atoms:
        """An Atoms owning ``arrays`` (numbers and positions first), ``cell`` (Å) and ``pbc``."""
        if not self.fast_atoms:
            atoms = Atoms(
                numbers=arrays["numbers"], positions=arrays["positions"], cell=cell, pbc=pbc
            )
            for name, array in arrays.items():
                if name not in ("numbers", "positions"):
                    atoms.arrays[name] = array
            atoms.info = info
            return atoms
        atoms = Atoms.__new__(Atoms)
        atoms.__dict__ = {
            "_cellobj": Cell(cell),
            "_pbc": pbc,
            "arrays": arrays,
            "_celldisp": np.zeros(3),
            "_constraints": [],
            "info": info,
            "_calc": None,
        }
        return atoms

    def attach(self, atoms: Atoms, results: dict[str, Any], copy: Atoms) -> None:
        """Attach a SinglePointCalculator holding ``results`` to ``atoms``.

        ``copy`` is an Atoms equal to ``atoms`` not sharing its arrays (the calculator's
        reference state).
        """
        if not self.fast_calc:
            atoms.calc = SinglePointCalculator(atoms, **results)
            return
        calc = SinglePointCalculator.__new__(SinglePointCalculator)
        state = dict(self.calc_template)
        state.update(atoms=copy, results=results, parameters=self.parameters_type())
        calc.__dict__ = state
        calc.get_spin_polarized = calc._deprecated_get_spin_polarized
        atoms._calc = calc


_FACTORY: _Factory | None = None


def _factory() -> _Factory:
    """The shared :class:`_Factory`, made on first use."""
    global _FACTORY
    if _FACTORY is None:
        _FACTORY = _Factory()
    return _FACTORY


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector (many small objects are made, none cyclic garbage)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _selection(n: int, indices: Sequence[int] | slice | None) -> np.ndarray:
    """Structure indices selected by ``indices`` (negative ones counted from the end)."""
    if indices is None:
        return np.arange(n)
    if isinstance(indices, slice):
        return np.arange(n)[indices]
    selected = np.asarray(indices, dtype=np.int64).reshape(-1)
    if selected.size and (selected.min() < -n or selected.max() >= n):
        raise IndexError(f"structure index out of range for a store of {n} structures")
    return np.where(selected < 0, selected + n, selected)


def _pieces(block: np.ndarray, starts: np.ndarray, stops: np.ndarray) -> list[np.ndarray]:
    """Views ``block[starts[j]:stops[j]]``; rows of one reshape when all pieces are adjacent."""
    sizes = stops - starts
    if sizes.size and sizes[0] > 0 and np.all(sizes == sizes[0]) and stops[-1] == len(block):
        if starts[0] == 0 and np.all(starts[1:] == stops[:-1]):
            return list(block.reshape(len(sizes), int(sizes[0]), *block.shape[1:]))
    return [block[a:b] for a, b in zip(starts.tolist(), stops.tolist(), strict=True)]


def read_structures(group: h5py.Group, indices: Sequence[int] | slice | None = None) -> list[Atoms]:
    """Read the structures (all, or those at ``indices``) of the store in ``group``.

    Positions and cells are in Å; calculator results come back as a
    :class:`~ase.calculators.singlepoint.SinglePointCalculator` (energy and free energy in eV,
    forces in eV/Å, stress Voigt in eV/Å^3). The arrays of different structures never share
    memory.

    Parameters
    ----------
    group : h5py.Group
        The group holding the store (an open file's root group or any group in it).
    indices : sequence of int or slice, optional
        Which structures to read, in the order given; negative indices count from the end, a
        repeated index gives an independent copy. Default: None (all structures, in order).

    Returns
    -------
    list of ase.Atoms
        The structures, one per selected index.

    Raises
    ------
    ValueError
        If ``group`` is not a complete store of a known format version (damaged, half-written,
        or of a newer version than :data:`FORMAT_VERSION`); the message names the file and
        group.
    IndexError
        If an index is out of range (a slice is clipped, as for a list).
    """
    with _gc_paused():
        return _read(group, indices)


def _read(group: h5py.Group, indices: Sequence[int] | slice | None) -> list[Atoms]:
    """Implementation of :func:`read_structures`."""
    n, offsets = _validate(group)
    selected = _selection(n, indices)
    m = len(selected)
    if m == 0:
        return []
    if len(np.unique(selected)) != m:  # repeated indices: read once, copy the repeats
        unique, inverse = np.unique(selected, return_inverse=True)
        firsts = _read(group, unique.tolist())
        return [firsts[k] if k >= 0 else firsts[-k - 1].copy() for k in _mark_repeats(inverse)]
    # read the smallest contiguous block holding the selection, then cut it into views
    lo, hi = int(selected.min()), int(selected.max()) + 1
    a_lo, a_hi = int(offsets[lo]), int(offsets[hi])
    local = selected - lo
    starts = offsets[selected] - a_lo
    stops = offsets[selected + 1] - a_lo

    blocks: dict[str, np.ndarray] = {
        "numbers": group["numbers"][a_lo:a_hi].astype(np.int64),
        "positions": group["positions"][a_lo:a_hi],
    }
    array_masks: dict[str, list[bool]] = {}
    for name, column in _columns(group, _ARRAYS):
        blocks[name] = column["values"][a_lo:a_hi]
        array_masks[name] = column["mask"][lo:hi][local].tolist()
    cell = group["cell"][lo:hi][local]
    pbc = group["pbc"][lo:hi][local]

    infos: list[dict[str, Any]] = [{} for _ in range(m)]
    for _, column in _columns(group, _INFO):
        key = _attr_str(column, "key")
        values, mask = _info_values(column, lo, hi)
        present = np.flatnonzero(mask[local])
        for j, i in zip(present.tolist(), local[present].tolist(), strict=True):
            infos[j][key] = values[i]

    results: list[tuple[str, list[Any], list[bool]]] = []
    for name, column in _columns(group, _RESULTS):
        if _RESULT_SHAPES[name][1]:
            per_structure: list[Any] = _pieces(column["values"][a_lo:a_hi], starts, stops)
        else:
            values = column["values"][lo:hi][local]
            per_structure = values.tolist() if values.ndim == 1 else list(values)
        results.append((name, per_structure, column["mask"][lo:hi][local].tolist()))
    has_results = np.zeros(m, bool)
    for _, _, mask in results:
        has_results |= mask

    pieces = {name: _pieces(block, starts, stops) for name, block in blocks.items()}
    cells, pbcs = list(cell), list(pbc)
    if has_results.any():  # independent copies for the calculators' reference states
        copies = {name: _pieces(block.copy(), starts, stops) for name, block in blocks.items()}
        cell_copies, pbc_copies = list(cell.copy()), list(pbc.copy())

    factory = _factory()
    names = list(pieces)
    structures = []
    for j in range(m):
        arrays = {name: pieces[name][j] for name in names}
        for name, mask in array_masks.items():
            if not mask[j]:
                del arrays[name]
        atoms = factory.atoms(arrays, cells[j], pbcs[j], infos[j])
        if has_results[j]:
            calc_results = {name: values[j] for name, values, mask in results if mask[j]}
            copy = factory.atoms(
                {name: copies[name][j] for name in arrays}, cell_copies[j], pbc_copies[j], {}
            )
            factory.attach(atoms, calc_results, copy)
        structures.append(atoms)
    return structures


def _mark_repeats(inverse: np.ndarray) -> list[int]:
    """Per position: the unique index ``k`` the first time it occurs, ``-k - 1`` afterwards."""
    seen: set[int] = set()
    marked = []
    for k in inverse.tolist():
        marked.append(-k - 1 if k in seen else k)
        seen.add(k)
    return marked


def read_file(path: str | Path) -> list[Atoms]:
    """All structures of the store at the root of the HDF5 file ``path``.

    Parameters
    ----------
    path : str or pathlib.Path
        The HDF5 file, e.g. one :func:`write_file` wrote.

    Returns
    -------
    list of ase.Atoms
        The structures, in order (see :func:`read_structures`).

    Raises
    ------
    FileNotFoundError
        If there is no such file.
    ValueError
        Naming the file, if it is not an HDF5 file or is truncated, damaged (a checksum fails)
        or half-written, or its root group is not a complete store of a known format version.
    """
    if not Path(path).exists():
        raise FileNotFoundError(f"no structure store file {path}")
    try:
        with h5py.File(path, "r") as handle:
            return read_structures(handle)
    except ValueError as error:
        if str(path) in str(error):
            raise
        raise ValueError(f"structure store file {path} cannot be read: {error}") from error
    except (OSError, KeyError, RuntimeError) as error:
        raise ValueError(
            f"structure store file {path} cannot be read (truncated, damaged or not an HDF5 "
            f"file): {type(error).__name__}: {error}"
        ) from error


# ----------------------------------------------------------------------------------------------
# table


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
