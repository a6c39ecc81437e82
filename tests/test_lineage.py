"""Provenance metadata: deterministic uuids, lineage lists, helpers."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import numpy as np
import pytest
from ase import Atoms
from hypothesis import given
from hypothesis import strategies as st

from assyst_nodes.lineage import (
    LINEAGE,
    NAMESPACE,
    SEED,
    STEP,
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


def family() -> tuple[Atoms, Atoms, Atoms]:
    """A seed, its child and its grandchild, made the way stages make them (ase's copy)."""
    root = update_uuid(dimer(), step="pyxtal")
    middle = update_uuid(root.copy(), step="relax")
    leaf = update_uuid(middle.copy(), step="rattle(0.1)")
    return root, middle, leaf


def is_uuid5(text: object) -> bool:
    return isinstance(text, str) and str(uuid.UUID(text)) == text and uuid.UUID(text).version == 5


# --- update_uuid ---------------------------------------------------------------------------


def test_update_uuid_makes_a_fresh_structure_its_own_seed() -> None:
    atoms = dimer()
    assert update_uuid(atoms, step="pyxtal") is atoms  # in place, and returned
    assert is_uuid5(atoms.info[UUID])
    assert atoms.info[SEED] == atoms.info[UUID]
    assert atoms.info[LINEAGE] == []
    assert atoms.info[STEP] == step_of(atoms) == "pyxtal"
    assert parent_of(atoms) is None
    assert seed_of(atoms) == atoms.info[UUID]


def test_update_uuid_without_a_step_sets_no_step() -> None:
    atoms = update_uuid(dimer())
    assert STEP not in atoms.info
    assert step_of(atoms) == "unknown"
    assert is_uuid5(atoms.info[UUID])


def test_update_uuid_appends_the_parent_and_keeps_the_seed() -> None:
    root, middle, leaf = family()
    assert middle.info[LINEAGE] == [root.info[UUID]]
    assert leaf.info[LINEAGE] == [root.info[UUID], middle.info[UUID]]
    assert root.info[SEED] == middle.info[SEED] == leaf.info[SEED] == root.info[UUID]
    assert len({root.info[UUID], middle.info[UUID], leaf.info[UUID]}) == 3
    assert [step_of(a) for a in (root, middle, leaf)] == ["pyxtal", "relax", "rattle(0.1)"]


def test_update_uuid_never_shares_or_mutates_the_parents_lineage_list() -> None:
    root, middle, leaf = family()
    # ase's Atoms.copy copies info shallowly: the lists would be shared if update_uuid appended
    assert root.copy().info[LINEAGE] is root.info[LINEAGE]
    assert root.info[LINEAGE] == []
    assert middle.info[LINEAGE] == [root.info[UUID]]
    assert len({id(a.info[LINEAGE]) for a in (root, middle, leaf)}) == 3
    leaf.info[LINEAGE].append("tampered")
    assert middle.info[LINEAGE] == [root.info[UUID]]
    assert root.info[LINEAGE] == []


def test_update_uuid_of_a_foreign_structure_with_only_a_uuid_makes_the_parent_the_seed() -> None:
    atoms = dimer()
    atoms.info[UUID] = "from-elsewhere"
    update_uuid(atoms, step="relax")
    assert atoms.info[LINEAGE] == ["from-elsewhere"]
    assert atoms.info[SEED] == "from-elsewhere"
    assert parent_of(atoms) == "from-elsewhere"


def test_update_uuid_is_deterministic() -> None:
    first, second = dimer(), dimer()
    update_uuid(first, step="s", key=3)
    update_uuid(second, step="s", key=3)
    assert first.info[UUID] == second.info[UUID]
    # children of equal parents by equal steps are equal too
    children = [update_uuid(parent.copy(), "relax") for parent in (first, second)]
    assert children[0].info[UUID] == children[1].info[UUID]
    # key=None: the geometry decides
    assert update_uuid(dimer()).info[UUID] == update_uuid(dimer()).info[UUID]


def test_uuids_are_the_same_in_another_process() -> None:
    code = (
        "from ase import Atoms; from assyst_nodes.lineage import update_uuid, derive_uuid;"
        "a = Atoms('Cu2', positions=[[0, 0, 0], [2.5, 0, 0]], cell=[6, 6, 6], pbc=True);"
        "print(update_uuid(a, step='pyxtal').info['uuid'], derive_uuid('p', 'relax', 7))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONHASHSEED": "123"},
    ).stdout.split()
    assert out == [update_uuid(dimer(), step="pyxtal").info[UUID], derive_uuid("p", "relax", 7)]


def test_derive_uuid_is_a_uuid5_in_the_package_namespace() -> None:
    assert derive_uuid("a", 1) == str(uuid.uuid5(NAMESPACE, "a\x1f1"))
    assert is_uuid5(derive_uuid())
    assert derive_uuid("a", 1) != derive_uuid("a", 2) != derive_uuid("a1")


@given(a=st.floats(1.0, 4.0), b=st.floats(1.0, 4.0))
def test_distinct_geometries_get_distinct_uuids(a: float, b: float) -> None:
    first = update_uuid(dimer(a), step="x")
    second = update_uuid(dimer(b), step="x")
    assert is_uuid5(first.info[UUID])
    assert (first.info[UUID] == second.info[UUID]) == (a == b)


@given(st.text(max_size=20), st.text(max_size=20), st.integers(), st.integers())
def test_uuid_differs_by_step_and_key(step_a: str, step_b: str, key_a: int, key_b: int) -> None:
    one = update_uuid(dimer(), step=step_a, key=key_a).info[UUID]
    two = update_uuid(dimer(), step=step_b, key=key_b).info[UUID]
    assert is_uuid5(one)
    assert (one == two) == (step_a == step_b and key_a == key_b)


@given(st.text(max_size=20), st.text(max_size=20))
def test_uuid_differs_by_string_key(key_a: str, key_b: str) -> None:
    one = update_uuid(dimer(), step="s", key=key_a).info[UUID]
    two = update_uuid(dimer(), step="s", key=key_b).info[UUID]
    assert (one == two) == (key_a == key_b)


@given(st.lists(st.sampled_from(["relax", "rattle", "stretch"]), min_size=1, max_size=5))
def test_children_uuids_depend_on_the_whole_history(steps: list[str]) -> None:
    atoms = update_uuid(dimer(), step="pyxtal")
    history = [atoms.info[UUID]]
    for step in steps:
        atoms = update_uuid(atoms.copy(), step=step)
        assert atoms.info[UUID] not in history  # a step repeated on a child is a new structure
        assert atoms.info[LINEAGE] == history
        history.append(atoms.info[UUID])
    assert seed_of(atoms) == history[0]


def test_geometry_digest_sees_every_bit_of_the_geometry() -> None:
    moved = dimer()
    moved.positions[1, 0] = np.nextafter(moved.positions[1, 0], 10)
    other_pbc = dimer()
    other_pbc.pbc = [True, True, False]
    other_cell = dimer()
    other_cell.cell[2, 2] = np.nextafter(6.0, 7.0)
    other_species = dimer()
    other_species.numbers[1] = 47
    variants = (dimer(), moved, other_pbc, other_cell, other_species)
    assert len({geometry_digest(a) for a in variants}) == len(variants)
    assert geometry_digest(dimer()) == geometry_digest(dimer())


# --- helpers -------------------------------------------------------------------------------


def test_step_of_returns_the_default_for_foreign_structures() -> None:
    assert step_of(dimer()) == "unknown"
    assert step_of(dimer(), default="dft") == "dft"
    assert seed_of(dimer()) is None
    assert parent_of(dimer()) is None


def test_parent_of_and_seed_of_follow_the_lineage() -> None:
    root, middle, leaf = family()
    assert parent_of(root) is None
    assert parent_of(middle) == root.info[UUID]
    assert parent_of(leaf) == middle.info[UUID]
    assert seed_of(root) == seed_of(middle) == seed_of(leaf) == root.info[UUID]
    no_seed = dimer()
    no_seed.info[UUID] = "only-a-uuid"
    assert seed_of(no_seed) == "only-a-uuid"


@pytest.mark.parametrize("container", [list, tuple, np.array])
def test_parent_of_accepts_a_lineage_read_back_as_any_sequence(container) -> None:
    """A store may give the lineage back as a tuple or a numpy array of strings."""
    _, _, leaf = family()
    stored = leaf.copy()
    stored.info[LINEAGE] = container(leaf.info[LINEAGE])
    assert parent_of(stored) == parent_of(leaf)
    empty = dimer()
    empty.info[LINEAGE] = container([])
    assert parent_of(empty) is None


def test_index_by_uuid_maps_uuids_to_structures() -> None:
    root, middle, leaf = family()
    index = index_by_uuid([leaf, root, middle])
    assert list(index) == [leaf.info[UUID], root.info[UUID], middle.info[UUID]]
    assert index[middle.info[UUID]] is middle


def test_index_by_uuid_rejects_duplicates_and_missing_ids() -> None:
    root, middle, _ = family()
    with pytest.raises(ValueError, match=f"uuid {middle.info[UUID]} occurs twice"):
        index_by_uuid([root, middle, middle.copy()])
    with pytest.raises(ValueError, match="carries no uuid"):
        index_by_uuid([root, dimer()])


@pytest.mark.parametrize("as_mapping", [False, True])
def test_chain_walks_from_the_seed_to_the_structure(as_mapping: bool) -> None:
    root, middle, leaf = family()
    pool = [leaf, middle, root]
    links = chain(leaf, index_by_uuid(pool) if as_mapping else pool)
    assert [a.info[UUID] for a in links] == [*leaf.info[LINEAGE], leaf.info[UUID]]
    assert [step_of(a) for a in links] == ["pyxtal", "relax", "rattle(0.1)"]
    assert links[0] is root and links[1] is middle and links[-1] is leaf
    assert chain(root, pool) == [root]


def test_chain_names_the_missing_ancestor() -> None:
    root, middle, leaf = family()
    with pytest.raises(KeyError, match=middle.info[UUID]):
        chain(leaf, [root, leaf])
    with pytest.raises(KeyError, match=root.info[UUID]):
        chain(leaf, {})
