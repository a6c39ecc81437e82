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

from .columns import FORMAT, FORMAT_VERSION, LIBVER, compact
from .read import read_file, read_structures
from .table import lineage_parents, structure_table
from .write import append_structures, write_file, write_structures

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
