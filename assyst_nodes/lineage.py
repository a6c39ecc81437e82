"""Provenance metadata in ``Atoms.info``: key names, deterministic uuids, lineage helpers.

The key names are the reference implementation's, so data sets from both mix:

=========================  ==============================================================
key                        meaning
=========================  ==============================================================
``uuid``                   this structure's id (a uuid5 string, derived deterministically)
``seed``                   uuid of the first ancestor (a sampled crystal is its own seed)
``lineage``                ancestor uuids, oldest first (the parent is the last one)
``step``                   what made this structure, the ``str`` of a stage config
``perturbation``           all perturbations applied since relaxation, ``+``-joined
``symmetry``               the space group asked of pyxtal (as the reference implementation)
``requested spacegroup``   the space group asked of pyxtal
``spacegroup``             the space group actually detected (spglib)
``repeat``                 index of the draw for its grid point (0 for :func:`sample`)
``supercell``              repetition of a one-atom cell before rattling, e.g. ``"2x2x2"``
``relax_converged``        whether the relaxation met its force tolerance
``rng_seed``               the seed of the random stream that made this structure alone
=========================  ==============================================================
"""

from __future__ import annotations

import hashlib
import uuid as _uuid
from collections.abc import Iterable, Mapping

import numpy as np
from ase import Atoms

__all__ = [
    "LINEAGE",
    "PERTURBATION",
    "RELAX_CONVERGED",
    "REPEAT",
    "REQUESTED_SPACEGROUP",
    "RNG_SEED",
    "SEED",
    "SPACEGROUP",
    "STEP",
    "SUPERCELL",
    "SYMMETRY",
    "UUID",
    "chain",
    "derive_uuid",
    "geometry_digest",
    "index_by_uuid",
    "make_root",
    "parent_of",
    "seed_of",
    "step_of",
    "update_uuid",
]

UUID = "uuid"
SEED = "seed"
LINEAGE = "lineage"
STEP = "step"
PERTURBATION = "perturbation"
SYMMETRY = "symmetry"
REQUESTED_SPACEGROUP = "requested spacegroup"
SPACEGROUP = "spacegroup"
REPEAT = "repeat"
RELAX_CONVERGED = "relax_converged"
RNG_SEED = "rng_seed"
SUPERCELL = "supercell"

NAMESPACE = _uuid.UUID("6f1c2a8e-3b7d-5e41-9a0c-5d2f4b8e7a13")
"""Namespace of every uuid this package derives (uuid5)."""


def derive_uuid(*parts: object) -> str:
    """A uuid5 string of ``parts``: equal parts give equal ids, in any process and on any day.

    Parameters
    ----------
    *parts : object
        What the id is derived from; each is converted with ``str``.

    Returns
    -------
    str
        uuid5 in the namespace ``NAMESPACE`` of the ``str`` of the parts, joined by the unit
        separator ``"\\x1f"``.
    """
    return str(_uuid.uuid5(NAMESPACE, "\x1f".join(str(part) for part in parts)))


def geometry_digest(structure: Atoms) -> str:
    """Hex digest of a structure's numbers, positions (Å), cell (Å) and pbc, bit for bit.

    Parameters
    ----------
    structure : ase.Atoms
        The structure; its ``info``, calculator and other arrays are not part of the digest.

    Returns
    -------
    str
        32 hex digits (BLAKE2b, 16 bytes); any change of a bit of the geometry changes it.
    """
    digest = hashlib.blake2b(digest_size=16)
    for array in (
        structure.numbers.astype(np.int64),
        structure.positions.astype(np.float64),
        structure.cell.array.astype(np.float64),
        structure.pbc.astype(np.bool_),
    ):
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def update_uuid(structure: Atoms, step: str | None = None, key: object = None) -> Atoms:
    """Give ``structure`` a new uuid, in place, and record where it came from; return it.

    The old uuid (if any) is appended to a *new* ``lineage`` list (the parent's list is never
    shared), ``seed`` keeps the first ancestor's uuid (a structure without a parent becomes its
    own seed) and ``step`` is set when given. The new uuid is uuid5 of (parent uuid, step, key).

    Parameters
    ----------
    structure : ase.Atoms
        The structure, changed in place.
    step : str, optional
        What made it (the ``str`` of a stage config), stored as ``step``. Default: ``None``,
        ``step`` is left as it is.
    key : object, optional
        What distinguishes this child from its siblings (converted with ``str``). Default:
        ``None``, the :func:`geometry_digest`, so distinct structures get distinct ids and a
        rerun with the same seeds gets the same ids.

    Returns
    -------
    ase.Atoms
        ``structure`` itself.
    """
    info = structure.info
    parent = info.get(UUID)
    if key is None:
        key = geometry_digest(structure)
    new = derive_uuid("" if parent is None else parent, "" if step is None else step, key)
    if parent is None:
        info[LINEAGE] = []
        info[SEED] = new
    else:
        lineage = [*info.get(LINEAGE, ()), parent]
        info[LINEAGE] = lineage
        info[SEED] = info.get(SEED, lineage[0])
    info[UUID] = new
    if step is not None:
        info[STEP] = step
    return structure


def make_root(structure: Atoms) -> Atoms:
    """Make ``structure`` the first of its line, in place; return it.

    A stage gives the result of an input without a uuid this form (the uuid minted for such an
    input to derive ids and random streams from is carried by no structure, so naming it as
    an ancestor would leave a chain that cannot be resolved); the reference implementation's
    results of such inputs are their own seeds too.

    Parameters
    ----------
    structure : ase.Atoms
        A structure carrying a ``uuid``; it gets an empty ``lineage`` and its own uuid as
        ``seed``.

    Returns
    -------
    ase.Atoms
        ``structure`` itself.

    Raises
    ------
    KeyError
        If ``structure`` carries no ``uuid``.
    """
    structure.info[LINEAGE] = []
    structure.info[SEED] = structure.info[UUID]
    return structure


def step_of(structure: Atoms, default: str = "unknown") -> str:
    """The step that made ``structure``, or ``default`` if it carries none.

    Parameters
    ----------
    structure : ase.Atoms
        The structure.
    default : str, default "unknown"
        What to return for a structure without ``step``.

    Returns
    -------
    str
        Its ``step`` (as ``str``) or ``default``.
    """
    return str(structure.info.get(STEP, default))


def parent_of(structure: Atoms) -> str | None:
    """The uuid of the direct parent, or ``None`` for a structure without ancestors.

    Parameters
    ----------
    structure : ase.Atoms
        The structure; its ``lineage`` may be a list or, read back from a store, an array.

    Returns
    -------
    str or None
        The last uuid of its ``lineage``; ``None`` if the lineage is empty or missing.
    """
    lineage = structure.info.get(LINEAGE)  # a list, or an array when read back from a store
    return str(lineage[-1]) if lineage is not None and len(lineage) else None


def seed_of(structure: Atoms) -> str | None:
    """The uuid of the first ancestor (the structure's own uuid if it has none).

    Parameters
    ----------
    structure : ase.Atoms
        The structure.

    Returns
    -------
    str or None
        Its ``seed``, else its ``uuid``; ``None`` if it carries neither.
    """
    seed = structure.info.get(SEED, structure.info.get(UUID))
    return None if seed is None else str(seed)


def index_by_uuid(structures: Iterable[Atoms]) -> dict[str, Atoms]:
    """Map uuid -> structure.

    Parameters
    ----------
    structures : iterable of ase.Atoms
        Structures, each carrying a distinct ``uuid``.

    Returns
    -------
    dict of str to ase.Atoms
        Each structure under its uuid, in order.

    Raises
    ------
    ValueError
        Naming the first uuid seen twice, or the formula of a structure that carries no uuid.
    """
    index: dict[str, Atoms] = {}
    for structure in structures:
        uid = structure.info.get(UUID)
        if uid is None:
            raise ValueError(f"structure {structure.get_chemical_formula()} carries no uuid")
        if uid in index:
            raise ValueError(f"uuid {uid} occurs twice")
        index[str(uid)] = structure
    return index


def chain(structure: Atoms, pool: Mapping[str, Atoms] | Iterable[Atoms]) -> list[Atoms]:
    """The ancestors of ``structure`` found in ``pool``, oldest first, then ``structure`` itself.

    Parameters
    ----------
    structure : ase.Atoms
        The structure whose ``lineage`` is followed.
    pool : mapping of str to ase.Atoms, or iterable of ase.Atoms
        The structures to look ancestors up in: a uuid -> structure mapping (e.g. from
        :func:`index_by_uuid`) or structures, indexed with :func:`index_by_uuid`.

    Returns
    -------
    list of ase.Atoms
        The ancestors, oldest first, then ``structure``.

    Raises
    ------
    KeyError
        Naming the first ancestor uuid missing from ``pool``.
    ValueError
        If ``pool`` is an iterable with a uuid twice or a structure without one (see
        :func:`index_by_uuid`).
    """
    index = pool if isinstance(pool, Mapping) else index_by_uuid(pool)
    links = []
    for uid in structure.info.get(LINEAGE, ()):
        if uid not in index:
            raise KeyError(f"ancestor {uid} of {structure.info.get(UUID)} is not in the pool")
        links.append(index[uid])
    return [*links, structure]
