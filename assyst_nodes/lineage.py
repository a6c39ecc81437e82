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
    """A uuid5 string of ``parts``: equal parts give equal ids, in any process and on any day."""
    return str(_uuid.uuid5(NAMESPACE, "\x1f".join(str(part) for part in parts)))


def geometry_digest(structure: Atoms) -> str:
    """Hex digest of a structure's numbers, positions (Å), cell (Å) and pbc, bit for bit."""
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
    own seed) and ``step`` is set when given. The new uuid is uuid5 of (parent uuid, step, key);
    with ``key=None`` the geometry digest is used, so distinct structures get distinct ids and a
    rerun with the same seeds gets the same ids.
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
    """Make ``structure`` the first of its line, in place: an empty ``lineage`` and its own uuid
    as ``seed``; return it.

    A stage gives the result of an input without a uuid this form (the uuid minted for such an
    input to derive ids and random streams from is carried by no structure, so naming it as
    an ancestor would leave a chain that cannot be resolved); the reference implementation's
    results of such inputs are their own seeds too."""
    structure.info[LINEAGE] = []
    structure.info[SEED] = structure.info[UUID]
    return structure


def step_of(structure: Atoms, default: str = "unknown") -> str:
    """The step that made ``structure``, or ``default`` if it carries none."""
    return str(structure.info.get(STEP, default))


def parent_of(structure: Atoms) -> str | None:
    """The uuid of the direct parent, or ``None`` for a structure without ancestors."""
    lineage = structure.info.get(LINEAGE)  # a list, or an array when read back from a store
    return str(lineage[-1]) if lineage is not None and len(lineage) else None


def seed_of(structure: Atoms) -> str | None:
    """The uuid of the first ancestor (the structure's own uuid if it has none)."""
    seed = structure.info.get(SEED, structure.info.get(UUID))
    return None if seed is None else str(seed)


def index_by_uuid(structures: Iterable[Atoms]) -> dict[str, Atoms]:
    """Map uuid -> structure; raises ``ValueError`` naming the first uuid seen twice."""
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

    Raises ``KeyError`` naming the first ancestor uuid missing from ``pool``.
    """
    index = pool if isinstance(pool, Mapping) else index_by_uuid(pool)
    links = []
    for uid in structure.info.get(LINEAGE, ()):
        if uid not in index:
            raise KeyError(f"ancestor {uid} of {structure.info.get(UUID)} is not in the pool")
        links.append(index[uid])
    return [*links, structure]
