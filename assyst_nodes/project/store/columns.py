"""The format of a store: its constants, the column helpers (chunked or compact datasets, info
column kinds and values) and the checks every structure passes before it is written."""

from __future__ import annotations

from collections.abc import Iterator
from contextvars import ContextVar
from itertools import chain, pairwise
from typing import Any, Final
from urllib.parse import quote

import h5py
import numpy as np
from ase.io.jsonio import decode, encode

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "LIBVER",
    "compact",
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
