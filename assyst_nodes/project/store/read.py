"""Reading stores back as :class:`ase.Atoms`: :func:`read_structures` and :func:`read_file`."""

from __future__ import annotations

import gc
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

import h5py
import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator
from ase.cell import Cell

from .columns import (
    _ARRAYS,
    _INFO,
    _RESULT_SHAPES,
    _RESULTS,
    _attr_str,
    _columns,
    _info_values,
    _validate,
)

__all__ = [
    "read_file",
    "read_structures",
]


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
