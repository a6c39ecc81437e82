"""Sampling: Formulas algebra, pyxtal(), sample() reproducibility and drop reports."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assyst_nodes import crystals
from assyst_nodes.crystals import Formulas, detect_spacegroup, pyxtal, sample
from assyst_nodes.filters import DistanceFilter
from assyst_nodes.lineage import (
    LINEAGE,
    REPEAT,
    REQUESTED_SPACEGROUP,
    RNG_SEED,
    SEED,
    SPACEGROUP,
    STEP,
    SYMMETRY,
    UUID,
)
from assyst_nodes.reports import StageReport

GROUPS = [1, 2, 47, 123, 191, 221, 225, 229]
CUAG = Formulas.range("Cu", 0, 3) * Formulas.range("Ag", 0, 3)


def key(atoms) -> tuple:
    return (
        atoms.info[UUID],
        atoms.numbers.tobytes(),
        atoms.positions.tobytes(),
        atoms.cell.array.tobytes(),
    )


# --- Formulas ------------------------------------------------------------------------------

compositions = st.dictionaries(
    st.sampled_from(["Cu", "Ag", "Au", "Ni"]), st.integers(0, 6), min_size=1, max_size=3
)
formulas_strategy = st.lists(compositions, max_size=5).map(Formulas)


def test_formulas_range_of_one_element_follows_builtin_range() -> None:
    assert list(Formulas.range("Cu", 1, 4)) == [{"Cu": 1}, {"Cu": 2}, {"Cu": 3}]
    assert list(Formulas.range("Cu", 3)) == [{"Cu": 0}, {"Cu": 1}, {"Cu": 2}]


def test_formulas_range_of_several_elements_gives_all_combinations() -> None:
    both = Formulas.range(("Cu", "Ag"), 1, 3)
    assert list(both) == [
        {"Cu": 1, "Ag": 1},
        {"Cu": 1, "Ag": 2},
        {"Cu": 2, "Ag": 1},
        {"Cu": 2, "Ag": 2},
    ]
    assert both == Formulas.range("Cu", 1, 3) * Formulas.range("Ag", 1, 3)


def test_formulas_or_pairs_item_by_item_up_to_the_shorter() -> None:
    paired = Formulas.range("Cu", 1, 4) | Formulas.range("Ag", 1, 3)
    assert list(paired) == [{"Cu": 1, "Ag": 1}, {"Cu": 2, "Ag": 2}]


@given(formulas_strategy, formulas_strategy)
def test_formulas_add_concatenates(a: Formulas, b: Formulas) -> None:
    total = a + b
    assert len(total) == len(a) + len(b)
    assert list(total) == list(a) + list(b)
    assert total.elements == a.elements | b.elements


@given(st.integers(0, 5), st.integers(0, 5))
def test_formulas_mul_has_the_product_of_lengths(n: int, m: int) -> None:
    product = Formulas.range("Cu", n) * Formulas.range("Ag", m)
    assert len(product) == n * m


@pytest.mark.parametrize("operator", ["__or__", "__mul__"])
def test_formulas_with_shared_elements_cannot_be_paired(operator: str) -> None:
    with pytest.raises(ValueError, match=r"\['Cu'\]"):
        getattr(Formulas.range("Cu", 1, 3), operator)(Formulas.range(("Cu", "Ag"), 1, 2))


@given(formulas_strategy)
def test_formulas_are_hashable_equal_by_value_and_pickle(formulas: Formulas) -> None:
    copy = pickle.loads(pickle.dumps(formulas))
    assert copy == formulas
    assert hash(copy) == hash(formulas)
    assert Formulas(list(formulas)) == formulas


def test_formulas_index_gives_a_dict_and_slice_gives_formulas() -> None:
    f = Formulas.range("Cu", 1, 5)
    assert f[0] == {"Cu": 1}
    assert isinstance(f[1:3], Formulas)
    assert list(f[1:3]) == [{"Cu": 2}, {"Cu": 3}]
    f[0]["Cu"] = 99  # a copy: the Formulas stays as it was
    assert f[0] == {"Cu": 1}


def test_formulas_trim_keeps_the_atom_count_window() -> None:
    f = Formulas.range(("Cu", "Ag"), 0, 4)
    trimmed = f.trim(2, 3)
    assert all(2 <= sum(c.values()) <= 3 for c in trimmed)
    assert len(trimmed) == sum(2 <= sum(c.values()) <= 3 for c in f)
    assert all(sum(c.values()) >= 1 for c in f.trim())
    with pytest.raises(ValueError, match="min_atoms"):
        f.trim(4, 2)


@pytest.mark.parametrize(
    ("composition", "message"),
    [({"Xy": 1}, "'Xy'"), ({"Cu": -1}, "-1"), ({"Cu": True}, "True"), ({"Cu": 1.5}, "1.5")],
)
def test_formulas_reject_bad_elements_and_counts(composition: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Formulas([composition])


# --- pyxtal() ------------------------------------------------------------------------------


def test_pyxtal_returns_a_labelled_symmetric_crystal() -> None:
    atoms = pyxtal(225, ["Cu"], [4], rng=3)
    assert len(atoms) == 4
    assert atoms.info[STEP] == "pyxtal"
    assert atoms.info[SYMMETRY] == atoms.info[REQUESTED_SPACEGROUP] == 225
    assert atoms.info[SPACEGROUP] == detect_spacegroup(atoms) == 225
    assert atoms.info[REPEAT] == 0
    assert atoms.info[SEED] == atoms.info[UUID]
    assert atoms.info[LINEAGE] == []
    assert atoms.info[RNG_SEED] == 3


def test_pyxtal_regenerates_a_structure_from_its_rng_seed() -> None:
    first = pyxtal(47, ["Cu", "Ag"], [1, 1], rng=np.random.default_rng(9))
    again = pyxtal(47, ["Cu", "Ag"], [1, 1], rng=first.info[RNG_SEED])
    assert key(first) == key(again)


def test_pyxtal_rejects_incompatible_and_out_of_range_groups() -> None:
    with pytest.raises(ValueError, match="incompatible"):
        pyxtal(225, ["Cu"], [1], rng=0)
    for group, dim, limit in [(0, 3, 230), (231, 3, 230), (81, 2, 80), (76, 1, 75), (59, 0, 58)]:
        with pytest.raises(ValueError, match=f"1..{limit}"):
            pyxtal(group, ["Cu"], [1], dim=dim, rng=0)
    with pytest.raises(ValueError, match="dim must be one of"):
        pyxtal(1, ["Cu"], [1], dim=4, rng=0)
    with pytest.raises(ValueError, match="differ in length"):
        pyxtal(1, ["Cu", "Ag"], [1], rng=0)


# --- sample() ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def reference_sample() -> list:
    return list(sample(CUAG, GROUPS, max_atoms=3, rng=7))


@settings(max_examples=3, deadline=None)
@given(st.integers(0, 2**63 - 1))
def test_sample_is_reproducible_bit_for_bit(seed: int) -> None:
    first = list(sample(CUAG, [1, 2, 221], max_atoms=2, rng=seed))
    second = list(sample(CUAG, [1, 2, 221], max_atoms=2, rng=seed))
    assert first
    assert [key(a) for a in first] == [key(a) for a in second]


def test_sample_gives_the_same_crystal_per_grid_point_in_any_order(reference_sample) -> None:
    expected = {a.info[UUID]: key(a) for a in reference_sample}
    shuffled = list(sample(CUAG, GROUPS, max_atoms=3, shuffle=True, rng=7))
    reversed_grid = list(sample(Formulas(list(CUAG)[::-1]), GROUPS[::-1], max_atoms=3, rng=7))
    for other in (shuffled, reversed_grid):
        assert {a.info[UUID]: key(a) for a in other} == expected
    assert [a.info[UUID] for a in shuffled] != [a.info[UUID] for a in reference_sample]


def test_sample_from_a_generator_is_reproducible_and_seeds_differ(reference_sample) -> None:
    a = list(sample(CUAG, [1, 2], max_atoms=2, rng=np.random.default_rng(1)))
    b = list(sample(CUAG, [1, 2], max_atoms=2, rng=np.random.default_rng(1)))
    assert [key(x) for x in a] == [key(x) for x in b]
    other = list(sample(CUAG, GROUPS, max_atoms=3, rng=8))
    assert {x.info[UUID] for x in other}.isdisjoint({x.info[UUID] for x in reference_sample})


def test_sample_skips_incompatible_groups_and_reports_them() -> None:
    report = StageReport()
    out = list(sample([{"Cu": 1}], [1, 225, 229], rng=0, report=report))
    assert [a.info[REQUESTED_SPACEGROUP] for a in out] == [1]
    assert report.n_in == 3 and report.n_out == 1
    assert report.dropped == {"incompatible": 2}
    assert {d.label for d in report.drops} == {"Cu1 @ 225", "Cu1 @ 229"}


def test_sample_reports_when_pyxtal_gives_up_and_goes_on(monkeypatch) -> None:
    real_draw = crystals._draw

    def flaky(group, species, num_ions, dim, seed, kwargs):
        if group == 2:
            raise RuntimeError("long time to generate structure, check inputs")
        return real_draw(group, species, num_ions, dim, seed, kwargs)

    monkeypatch.setattr(crystals, "_draw", flaky)
    report = StageReport()
    out = list(sample([{"Cu": 2}], [1, 2, 47], rng=0, report=report))
    assert [a.info[REQUESTED_SPACEGROUP] for a in out] == [1, 47]
    assert report.dropped == {"pyxtal_failed": 1}
    assert "long time" in report.drops[0].detail


def test_sample_respects_max_structures_and_atom_counts() -> None:
    report = StageReport()
    out = list(
        sample(CUAG, GROUPS, min_atoms=2, max_atoms=3, max_structures=3, rng=1, report=report)
    )
    assert len(out) == 3 == report.n_out
    assert all(2 <= len(a) <= 3 for a in out)


def test_sample_ignores_zero_counts() -> None:
    out = list(sample([{"Cu": 2, "Ag": 0}], [1], rng=0))
    assert out[0].get_chemical_symbols() == ["Cu", "Cu"]


@pytest.mark.parametrize(
    "tolerance", ["metallic", 0.8, {"Cu": 0.8, "Ag": 0.9}, DistanceFilter({"Cu": 0.8, "Ag": 0.9})]
)
def test_sample_tolerance_forms_agree_with_the_distance_filter(tolerance) -> None:
    out = list(sample(CUAG, [1, 2, 47], max_atoms=3, tolerance=tolerance, rng=2))
    assert out
    if not isinstance(tolerance, str):
        radii = tolerance if isinstance(tolerance, DistanceFilter) else DistanceFilter(tolerance)
        assert all(radii(a) for a in out)


def test_sample_rejects_bad_input_before_drawing() -> None:
    with pytest.raises(ValueError, match="unknown tolerance prototype 'soft'"):
        sample(CUAG, [1], tolerance="soft")
    with pytest.raises(ValueError, match="min_atoms"):
        sample(CUAG, [1], min_atoms=5, max_atoms=2)
    with pytest.raises(ValueError, match="formulas is empty"):
        sample([], [1])
    with pytest.raises(ValueError, match=r"1\.\.230"):
        sample(CUAG, [0, 5])
    with pytest.raises(ValueError, match="dim must be one of"):
        sample(CUAG, [1], dim=5)  # type: ignore[arg-type]


def test_sampled_crystals_are_unique_seeds_with_detected_groups(reference_sample) -> None:
    uuids = [a.info[UUID] for a in reference_sample]
    assert len(set(uuids)) == len(uuids)
    for atoms in reference_sample:
        assert atoms.info[SEED] == atoms.info[UUID] and atoms.info[LINEAGE] == []
        assert atoms.info[SPACEGROUP] == detect_spacegroup(atoms)
        # a random crystal can come out more symmetric than asked, never less
        assert atoms.info[SPACEGROUP] >= 1
