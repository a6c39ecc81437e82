"""Provenance metadata: deterministic uuids, lineage lists, helpers."""

from __future__ import annotations

import uuid

import numpy as np
import pytest
from ase import Atoms
from hypothesis import given
from hypothesis import strategies as st

from assyst_nodes.lineage import (
    LINEAGE,
    SEED,
    UUID,
    chain,
    derive_uuid,
    geometry_digest,
    index_by_uuid,
    parent_of,
    seed_of,
    step_of,
    update_uuid,
)


def dimer(distance: float = 2.5) -> Atoms:
    return Atoms("Cu2", positions=[[0, 0, 0], [distance, 0, 0]], cell=[6, 6, 6], pbc=True)


def test_update_uuid_makes_a_fresh_structure_its_own_seed() -> None:
    atoms = update_uuid(dimer(), step="pyxtal")
    assert uuid.UUID(atoms.info[UUID]).version == 5
    assert atoms.info[SEED] == atoms.info[UUID]
    assert atoms.info[LINEAGE] == []
    assert step_of(atoms) == "pyxtal"
    assert parent_of(atoms) is None
    assert seed_of(atoms) == atoms.info[UUID]


def test_update_uuid_appends_the_parent_without_sharing_its_lineage_list() -> None:
    parent = update_uuid(dimer(), step="pyxtal")
    child = update_uuid(parent.copy(), step="relax")
    grandchild = update_uuid(child.copy(), step="rattle(0.1)")
    assert child.info[LINEAGE] == [parent.info[UUID]]
    assert grandchild.info[LINEAGE] == [parent.info[UUID], child.info[UUID]]
    assert parent.info[LINEAGE] == []  # ase's copy shares info values; ours never mutates them
    assert child.info[LINEAGE] is not grandchild.info[LINEAGE]
    assert grandchild.info[SEED] == parent.info[UUID]
    assert parent_of(grandchild) == child.info[UUID]
    assert step_of(grandchild) == "rattle(0.1)"


def test_update_uuid_is_deterministic_and_returns_the_same_object() -> None:
    first, second = dimer(), dimer()
    assert update_uuid(first, step="s", key=3) is first
    update_uuid(second, step="s", key=3)
    assert first.info[UUID] == second.info[UUID]


@given(
    a=st.floats(1.0, 4.0, allow_nan=False),
    b=st.floats(1.0, 4.0, allow_nan=False),
)
def test_distinct_geometries_get_distinct_uuids(a: float, b: float) -> None:
    first = update_uuid(dimer(a), step="x")
    second = update_uuid(dimer(b), step="x")
    assert (first.info[UUID] == second.info[UUID]) == (
        geometry_digest(first) == geometry_digest(second)
    )
    assert (first.info[UUID] == second.info[UUID]) == (a == b)


@given(st.text(max_size=20), st.text(max_size=20), st.integers(), st.integers())
def test_uuid_differs_by_step_and_key(step_a: str, step_b: str, key_a: int, key_b: int) -> None:
    one = update_uuid(dimer(), step=step_a, key=key_a).info[UUID]
    two = update_uuid(dimer(), step=step_b, key=key_b).info[UUID]
    assert (one == two) == (step_a == step_b and key_a == key_b)


def test_derive_uuid_is_a_stable_uuid5() -> None:
    assert derive_uuid("a", 1) == derive_uuid("a", 1)
    assert derive_uuid("a", 1) != derive_uuid("a", 2)
    assert uuid.UUID(derive_uuid("a")).version == 5
    # stable across releases: data sets rely on it
    assert derive_uuid("parent", "relax", "") == derive_uuid("parent", "relax", "")


def test_geometry_digest_sees_every_bit_of_the_geometry() -> None:
    base = dimer()
    moved = dimer()
    moved.positions[1, 0] = np.nextafter(moved.positions[1, 0], 10)
    other_pbc = dimer()
    other_pbc.pbc = [True, True, False]
    digests = {geometry_digest(a) for a in (base, moved, other_pbc)}
    assert len(digests) == 3
    assert geometry_digest(dimer()) == geometry_digest(base)


def test_step_of_returns_the_default_for_foreign_structures() -> None:
    assert step_of(dimer()) == "unknown"
    assert step_of(dimer(), default="dft") == "dft"
    assert seed_of(dimer()) is None


def test_index_by_uuid_rejects_duplicates_and_missing_ids() -> None:
    atoms = update_uuid(dimer())
    with pytest.raises(ValueError, match=atoms.info[UUID]):
        index_by_uuid([atoms, atoms.copy()])
    with pytest.raises(ValueError, match="carries no uuid"):
        index_by_uuid([dimer()])


def test_chain_walks_from_the_seed_to_the_structure() -> None:
    root = update_uuid(dimer(), step="pyxtal")
    middle = update_uuid(root.copy(), step="relax")
    leaf = update_uuid(middle.copy(), step="rattle")
    links = chain(leaf, [leaf, root, middle])
    assert [step_of(a) for a in links] == ["pyxtal", "relax", "rattle"]
    assert links[-1] is leaf
    with pytest.raises(KeyError, match=middle.info[UUID]):
        chain(leaf, [root, leaf])
