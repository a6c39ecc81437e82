"""Sampling: Formulas algebra, pyxtal(), sample() reproducibility and drop reports."""

from __future__ import annotations

import copy
import itertools
import operator as operator_module
import pickle

import numpy as np
import pytest
import pyxtal as pyxtal_package
from ase import Atoms
from ase.neighborlist import neighbor_list
from hypothesis import given, settings
from hypothesis import strategies as st
from pyxtal.tolerance import Tol_matrix

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
from assyst_nodes.random import MAX_SEED
from assyst_nodes.reports import StageReport
from assyst_nodes.stages import sample as crystals
from assyst_nodes.stages.filter import DistanceFilter
from assyst_nodes.stages.sample import (
    MAX_GROUP,
    TOLERANCE_PROTOTYPES,
    Formulas,
    detect_spacegroup,
    pyxtal,
    sample,
)

GROUPS = [1, 2, 47, 123, 191, 221, 225, 229]
CUAG = Formulas.range("Cu", 0, 3) * Formulas.range("Ag", 0, 3)
PYXTAL_KEYS = {
    SYMMETRY,
    REQUESTED_SPACEGROUP,
    SPACEGROUP,
    REPEAT,
    RNG_SEED,
    UUID,
    SEED,
    LINEAGE,
    STEP,
}


def key(atoms: Atoms) -> tuple:
    """Everything that must be reproduced bit for bit."""
    return (
        atoms.info[UUID],
        atoms.numbers.tobytes(),
        atoms.positions.tobytes(),
        atoms.cell.array.tobytes(),
        atoms.pbc.tobytes(),
    )


def by_uuid(structures: list[Atoms]) -> dict[str, tuple]:
    return {a.info[UUID]: key(a) for a in structures}


def grid_point(atoms: Atoms) -> tuple[str, int]:
    return atoms.get_chemical_formula(), atoms.info[REQUESTED_SPACEGROUP]


# --- Formulas ------------------------------------------------------------------------------

counts = st.integers(0, 6)
compositions = st.dictionaries(
    st.sampled_from(["Cu", "Ag", "Au", "Ni"]), counts, min_size=1, max_size=3
)
formulas_strategy = st.lists(compositions, max_size=5).map(Formulas)
# two families with disjoint elements, for | and *
left_formulas = st.lists(
    st.dictionaries(st.sampled_from(["Cu", "Ag"]), counts, min_size=1), max_size=4
)
right_formulas = st.lists(
    st.dictionaries(st.sampled_from(["Au", "Ni"]), counts, min_size=1), max_size=4
)


def items(formulas: Formulas) -> list[list[tuple[str, int]]]:
    """The compositions with their element order (dict equality would ignore it)."""
    return [list(c.items()) for c in formulas]


def test_formulas_range_of_one_element_follows_builtin_range() -> None:
    assert list(Formulas.range("Cu", 1, 4)) == [{"Cu": 1}, {"Cu": 2}, {"Cu": 3}]
    assert list(Formulas.range("Cu", 3)) == [{"Cu": 0}, {"Cu": 1}, {"Cu": 2}]
    assert list(Formulas.range("Cu", 1, 6, 2)) == [{"Cu": 1}, {"Cu": 3}, {"Cu": 5}]
    assert len(Formulas.range("Cu", 3, 1)) == 0


def test_formulas_range_of_several_elements_gives_all_combinations() -> None:
    both = Formulas.range(("Cu", "Ag"), 1, 3)
    assert items(both) == [
        [("Cu", 1), ("Ag", 1)],
        [("Cu", 1), ("Ag", 2)],
        [("Cu", 2), ("Ag", 1)],
        [("Cu", 2), ("Ag", 2)],
    ]
    assert both == Formulas.range("Cu", 1, 3) * Formulas.range("Ag", 1, 3)
    three = Formulas.range(["Cu", "Ag", "Au"], 0, 3)
    assert len(three) == 3**3
    assert three.elements == {"Cu", "Ag", "Au"}
    with pytest.raises(ValueError, match="at least one element"):
        Formulas.range([], 1, 3)


@given(formulas_strategy, formulas_strategy)
def test_formulas_add_concatenates(a: Formulas, b: Formulas) -> None:
    total = a + b
    assert isinstance(total, Formulas)
    assert len(total) == len(a) + len(b)
    assert items(total) == items(a) + items(b)
    assert total.elements == a.elements | b.elements
    assert a + Formulas() == a == Formulas() + a


@given(left_formulas, right_formulas)
def test_formulas_or_pairs_item_by_item_up_to_the_shorter(left: list, right: list) -> None:
    a, b = Formulas(left), Formulas(right)
    paired = a | b
    assert len(paired) == min(len(a), len(b))
    assert items(paired) == [x + y for x, y in zip(items(a), items(b), strict=False)]


def test_formulas_or_example() -> None:
    paired = Formulas.range("Cu", 1, 4) | Formulas.range("Ag", 1, 3)
    assert items(paired) == [[("Cu", 1), ("Ag", 1)], [("Cu", 2), ("Ag", 2)]]


@given(left_formulas, right_formulas)
def test_formulas_mul_takes_all_combinations(left: list, right: list) -> None:
    a, b = Formulas(left), Formulas(right)
    product = a * b
    assert len(product) == len(a) * len(b)
    assert items(product) == [x + y for x, y in itertools.product(items(a), items(b))]
    if len(product):
        assert product.elements == a.elements | b.elements


@pytest.mark.parametrize("operator", ["__or__", "__mul__"])
def test_formulas_with_shared_elements_cannot_be_paired(operator: str) -> None:
    # a ValueError, not an assert: it must hold under python -O too
    with pytest.raises(ValueError, match=r"disjoint element sets; both contain \['Cu'\]"):
        getattr(Formulas.range("Cu", 1, 3), operator)(Formulas.range(("Cu", "Ag"), 1, 2))


@pytest.mark.parametrize("operator", ["__or__", "__mul__"])
def test_formulas_pair_only_with_formulas(operator: str) -> None:
    with pytest.raises(TypeError, match="needs Formulas, got list"):
        getattr(Formulas.range("Cu", 1, 3), operator)([{"Ag": 1}])
    with pytest.raises(TypeError):
        operator_module.add(Formulas.range("Cu", 1, 3), [{"Ag": 1}])


@given(formulas_strategy)
def test_formulas_are_hashable_equal_by_value_and_pickle(formulas: Formulas) -> None:
    rebuilt = Formulas(list(formulas))
    assert rebuilt == formulas and hash(rebuilt) == hash(formulas)
    for clone in (pickle.loads(pickle.dumps(formulas)), copy.deepcopy(formulas)):
        assert clone == formulas
        assert hash(clone) == hash(formulas)
        assert items(clone) == items(formulas)
    assert len({formulas, rebuilt}) == 1


@given(formulas_strategy, formulas_strategy)
def test_formulas_are_equal_iff_their_compositions_are(a: Formulas, b: Formulas) -> None:
    assert (a == b) == (items(a) == items(b))


def test_formulas_keep_element_order_and_compare_with_it() -> None:
    cu_ag, ag_cu = Formulas([{"Cu": 1, "Ag": 2}]), Formulas([{"Ag": 2, "Cu": 1}])
    assert cu_ag != ag_cu
    assert str(cu_ag) == "Cu1Ag2" and str(ag_cu) == "Ag2Cu1"


def test_formulas_index_gives_a_dict_and_slice_gives_formulas() -> None:
    f = Formulas.range("Cu", 1, 5)
    assert f[0] == {"Cu": 1} and type(f[0]) is dict
    assert f[-1] == {"Cu": 4}
    assert isinstance(f[1:3], Formulas)
    assert f[1:3] == Formulas([{"Cu": 2}, {"Cu": 3}])
    assert f[::-1] == Formulas(list(f)[::-1])
    f[0]["Cu"] = 99  # a copy: the Formulas stays as it was
    assert f[0] == {"Cu": 1}
    with pytest.raises(IndexError):
        f[4]
    assert {"Cu": 3} in f and {"Cu": 5} not in f
    assert list(reversed(f)) == list(f)[::-1]


def test_formulas_accept_one_mapping_pairs_and_numpy_counts() -> None:
    assert Formulas({"Cu": 2}) == Formulas([{"Cu": 2}])
    assert Formulas([[("Cu", 2), ("Ag", 1)]]) == Formulas([{"Cu": 2, "Ag": 1}])
    numpy_counts = Formulas([{"Cu": np.int64(2)}])
    assert numpy_counts == Formulas([{"Cu": 2}])
    assert type(numpy_counts[0]["Cu"]) is int
    assert repr(Formulas([{"Cu": 2}])) == "Formulas([{'Cu': 2}])"


def test_formulas_elements_is_the_union_of_all_compositions() -> None:
    f = Formulas([{"Cu": 1}, {"Ag": 0, "Au": 2}])
    assert f.elements == frozenset({"Cu", "Ag", "Au"})
    assert isinstance(f.elements, frozenset)
    assert Formulas().elements == frozenset()


@given(formulas_strategy, st.integers(0, 8), st.integers(0, 8) | st.none())
def test_formulas_trim_keeps_the_inclusive_atom_count_window(
    f: Formulas, low: int, high: int | None
) -> None:
    if high is not None and low > high:
        with pytest.raises(ValueError, match=f"min_atoms \\({low}\\) must be <= max_atoms"):
            f.trim(low, high)
        return
    trimmed = f.trim(low, high)
    expected = [
        c for c in items(f) if low <= sum(n for _, n in c) <= (10**9 if high is None else high)
    ]
    assert items(trimmed) == expected


def test_formulas_trim_bounds_are_inclusive() -> None:
    f = Formulas.range("Cu", 0, 6)
    assert f.trim(2, 4) == Formulas([{"Cu": 2}, {"Cu": 3}, {"Cu": 4}])
    assert f.trim() == f[1:]  # at least one atom by default
    assert f.trim(5) == Formulas([{"Cu": 5}])


@pytest.mark.parametrize(
    ("composition", "message"),
    [
        ({"Xy": 1}, "'Xy'"),
        ({"X": 1}, "'X'"),
        ({"cu": 1}, "'cu'"),
        ({"Cu": -1}, "-1"),
        ({"Cu": True}, "True"),
        ({"Cu": 1.5}, "1.5"),
        ({"Cu": 2.0}, "2.0"),
        ({"Cu": "2"}, "'2'"),
        ([("Cu", 1), ("Cu", 2)], "'Cu' occurs twice"),
    ],
)
def test_formulas_reject_bad_elements_and_counts(composition: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Formulas([composition])  # type: ignore[list-item]


# --- pyxtal() ------------------------------------------------------------------------------


def test_pyxtal_returns_a_labelled_symmetric_crystal() -> None:
    atoms = pyxtal(225, ["Cu"], [4], rng=3)
    assert isinstance(atoms, Atoms)
    assert len(atoms) == 4 and atoms.get_chemical_symbols() == ["Cu"] * 4
    assert PYXTAL_KEYS <= set(atoms.info)
    assert atoms.info[STEP] == "pyxtal"
    assert atoms.info[SYMMETRY] == atoms.info[REQUESTED_SPACEGROUP] == 225
    assert atoms.info[SPACEGROUP] == detect_spacegroup(atoms) == 225
    assert atoms.info[REPEAT] == 0
    assert atoms.info[SEED] == atoms.info[UUID]
    assert atoms.info[LINEAGE] == []
    assert atoms.info[RNG_SEED] == 3
    assert np.all(atoms.get_scaled_positions(wrap=False) >= 0)
    assert np.all(atoms.get_scaled_positions(wrap=False) < 1)  # wrapped into the cell


@settings(max_examples=3, deadline=None)
@given(st.integers(0, MAX_SEED))
def test_pyxtal_regenerates_a_structure_from_its_rng_seed(seed: int) -> None:
    first = pyxtal(47, ["Cu", "Ag"], [1, 1], rng=np.random.default_rng(seed))
    assert 0 <= first.info[RNG_SEED] <= MAX_SEED
    again = pyxtal(47, ["Cu", "Ag"], [1, 1], rng=first.info[RNG_SEED])
    assert key(first) == key(again)
    assert first.info == again.info


def test_pyxtal_passes_keywords_on_and_distinct_structures_get_distinct_uuids() -> None:
    dense = pyxtal(1, ["Cu"], [2], rng=5, factor=1.0)
    loose = pyxtal(1, ["Cu"], [2], rng=5, factor=2.0)
    assert loose.get_volume() > dense.get_volume()
    assert loose.info[RNG_SEED] == dense.info[RNG_SEED]
    assert loose.info[UUID] != dense.info[UUID]


def test_pyxtal_rejects_incompatible_groups() -> None:
    with pytest.raises(ValueError, match=r"group 225 \(dim=3\) is incompatible with \{'Cu': 1\}"):
        pyxtal(225, ["Cu"], [1], rng=0)


@pytest.mark.parametrize(
    ("group", "dim"),
    [(0, 3), (231, 3), (-1, 3), (0, 2), (81, 2), (76, 1), (57, 0), (58, 0), (59, 0), (0, 0)],
)
def test_pyxtal_rejects_groups_out_of_range_for_the_dimension(group: int, dim: int) -> None:
    limit = MAX_GROUP[dim]
    with pytest.raises(
        ValueError, match=f"group {group} out of range: dim={dim} allows 1..{limit}"
    ):
        pyxtal(group, ["Cu"], [1], dim=dim, rng=0)


def test_max_group_is_the_last_group_pyxtal_accepts() -> None:
    from pyxtal.symmetry import Group

    assert MAX_GROUP == {0: 56, 1: 75, 2: 80, 3: 230}
    for dim, last in MAX_GROUP.items():
        assert Group(last, dim=dim).number == last
        with pytest.raises(ValueError):
            Group(last + 1, dim=dim)


@pytest.mark.parametrize(("group", "dim", "count"), [(80, 2, 1), (75, 1, 2), (1, 0, 2)])
def test_pyxtal_draws_the_last_groups_of_lower_dimensions(group: int, dim: int, count: int) -> None:
    atoms = pyxtal(group, ["Cu"], [count], dim=dim, rng=0)
    assert atoms.info[REQUESTED_SPACEGROUP] == group
    assert len(atoms) == count
    assert atoms.pbc.sum() == dim


@pytest.mark.parametrize("dim", [-1, 4, 30])
def test_pyxtal_rejects_dimensions_other_than_0_to_3(dim: object) -> None:
    with pytest.raises(ValueError, match="dim must be one of 0, 1, 2, 3"):
        pyxtal(1, ["Cu"], [1], dim=dim, rng=0)  # type: ignore[arg-type]


def test_pyxtal_rejects_bad_species_and_counts() -> None:
    with pytest.raises(ValueError, match="differ in length"):
        pyxtal(1, ["Cu", "Ag"], [1], rng=0)
    with pytest.raises(ValueError, match="'Qq'"):
        pyxtal(1, ["Qq"], [1], rng=0)
    with pytest.raises(ValueError, match="-2"):
        pyxtal(1, ["Cu"], [-2], rng=0)
    with pytest.raises(TypeError, match="symmetry group must be an int"):
        pyxtal(True, ["Cu"], [1], rng=0)  # type: ignore[arg-type]


def test_pyxtal_raises_runtime_error_when_pyxtal_gives_up(monkeypatch) -> None:
    def give_up(self, *args, **kwargs):
        raise RuntimeError("long time to generate structure, check inputs")

    monkeypatch.setattr(pyxtal_package.pyxtal, "from_random", give_up)
    with pytest.raises(RuntimeError, match="long time"):
        pyxtal(1, ["Cu"], [1], rng=0)


@pytest.mark.parametrize(
    ("group", "composition"),
    [(221, {"Cu": 1}), (221, {"Cu": 3, "Ag": 1}), (225, {"Cu": 4}), (229, {"Cu": 2})],
)
def test_pyxtal_detects_cubic_groups_it_was_asked_for(group: int, composition: dict) -> None:
    atoms = pyxtal(group, list(composition), list(composition.values()), rng=1)
    assert atoms.info[SPACEGROUP] == detect_spacegroup(atoms)
    assert atoms.info[SPACEGROUP] >= group


def test_detect_spacegroup_of_structures_without_a_cell_is_zero() -> None:
    assert detect_spacegroup(Atoms("Cu2", positions=[[0, 0, 0], [2, 0, 0]])) == 0
    cluster = pyxtal(1, ["Cu"], [2], dim=0, rng=0)
    assert cluster.info[SPACEGROUP] == 0 and not cluster.pbc.any()


# --- sample() ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def reference_sample() -> list[Atoms]:
    return list(sample(CUAG, GROUPS, max_atoms=3, rng=7))


@settings(max_examples=3, deadline=None)
@given(st.integers(0, MAX_SEED))
def test_sample_is_reproducible_bit_for_bit(seed: int) -> None:
    first = list(sample(CUAG, [1, 2, 221], max_atoms=2, rng=seed))
    second = list(sample(CUAG, [1, 2, 221], max_atoms=2, rng=seed))
    assert first
    assert [key(a) for a in first] == [key(a) for a in second]
    assert [a.info for a in first] == [a.info for a in second]


def test_sample_from_a_generator_is_reproducible() -> None:
    a = list(sample(CUAG, [1, 2], max_atoms=2, rng=np.random.default_rng(1)))
    b = list(sample(CUAG, [1, 2], max_atoms=2, rng=np.random.default_rng(1)))
    assert a
    assert [key(x) for x in a] == [key(x) for x in b]


def formula_of(composition: dict[str, int]) -> str:
    return Atoms([e for e, n in composition.items() for _ in range(n)]).get_chemical_formula()


def test_sample_walks_the_grid_formula_by_formula(reference_sample) -> None:
    made = [grid_point(a) for a in reference_sample]
    grid = [(formula_of(f), g) for f in CUAG.trim(1, 3) for g in GROUPS]
    assert made == [point for point in grid if point in made]
    assert len(set(made)) == len(made)


def test_sample_gives_the_same_crystals_when_shuffled(reference_sample) -> None:
    shuffled = list(sample(CUAG, GROUPS, max_atoms=3, shuffle=True, rng=7))
    assert by_uuid(shuffled) == by_uuid(reference_sample)
    assert [a.info[UUID] for a in shuffled] != [a.info[UUID] for a in reference_sample]
    again = list(sample(CUAG, GROUPS, max_atoms=3, shuffle=True, rng=7))
    assert [key(a) for a in again] == [key(a) for a in shuffled]  # the shuffle is seeded


@pytest.mark.parametrize("reverse", ["spacegroups", "formulas", "both"])
def test_sample_gives_the_same_crystals_for_the_grid_in_any_order(
    reference_sample, reverse: str
) -> None:
    formulas = CUAG[::-1] if reverse in ("formulas", "both") else CUAG
    groups = GROUPS[::-1] if reverse in ("spacegroups", "both") else GROUPS
    other = list(sample(formulas, groups, max_atoms=3, rng=7))
    assert by_uuid(other) == by_uuid(reference_sample)
    assert [a.info[UUID] for a in other] != [a.info[UUID] for a in reference_sample]


@pytest.mark.parametrize(
    ("composition", "group"), [({"Ag": 1}, 1), ({"Cu": 1, "Ag": 1}, 221), ({"Cu": 1, "Ag": 2}, 47)]
)
def test_sample_gives_a_grid_point_the_same_crystal_whatever_else_is_drawn(
    reference_sample, composition: dict, group: int
) -> None:
    (alone,) = sample([composition], [group], rng=7)
    assert by_uuid(reference_sample)[alone.info[UUID]] == key(alone)


def test_sample_with_another_seed_gives_other_crystals(reference_sample) -> None:
    other = list(sample(CUAG, GROUPS, max_atoms=3, rng=8))
    assert {grid_point(a) for a in other} == {grid_point(a) for a in reference_sample}
    assert set(by_uuid(other)).isdisjoint(by_uuid(reference_sample))
    same_points = {grid_point(a): a for a in reference_sample}
    moved = [
        not np.array_equal(
            a.get_scaled_positions(), same_points[grid_point(a)].get_scaled_positions()
        )
        or not np.array_equal(a.cell.array, same_points[grid_point(a)].cell.array)
        for a in other
    ]
    assert all(moved)


def test_sampled_crystals_are_unique_seeds_with_detected_groups(reference_sample) -> None:
    uuids = [a.info[UUID] for a in reference_sample]
    assert len(set(uuids)) == len(uuids)
    for atoms in reference_sample:
        assert PYXTAL_KEYS <= set(atoms.info)
        assert atoms.info[SEED] == atoms.info[UUID]
        assert atoms.info[LINEAGE] == []
        assert atoms.info[STEP] == "pyxtal"
        assert atoms.info[REPEAT] == 0
        assert atoms.info[SPACEGROUP] == detect_spacegroup(atoms)
        assert 1 <= len(atoms) <= 3


def test_sampled_crystals_record_the_seed_of_their_own_stream(reference_sample) -> None:
    assert len({a.info[RNG_SEED] for a in reference_sample}) == len(reference_sample)
    (sampled,) = sample([{"Cu": 1, "Ag": 1}], [221], tolerance="metallic", rng=7)
    again = pyxtal(
        221,
        ["Cu", "Ag"],
        [1, 1],
        rng=sampled.info[RNG_SEED],
        tm=Tol_matrix(prototype="metallic"),  # what sample() hands to pyxtal
    )
    assert key(again) == key(sampled)


def test_sample_detects_high_symmetry_cubic_groups() -> None:
    formulas = Formulas([{"Cu": 1}, {"Cu": 2}, {"Cu": 4}, {"Cu": 3, "Ag": 1}])
    out = list(sample(formulas, [221, 225, 229], max_atoms=4, rng=3))
    assert {grid_point(a) for a in out} >= {("Cu", 221), ("Cu2", 229), ("Cu4", 225), ("AgCu3", 221)}
    for atoms in out:
        assert atoms.info[SPACEGROUP] == detect_spacegroup(atoms)
        assert atoms.info[SPACEGROUP] >= atoms.info[REQUESTED_SPACEGROUP]


def test_sample_skips_incompatible_groups_and_reports_them() -> None:
    report = StageReport()
    out = list(sample([{"Cu": 1}], [1, 225, 229], rng=0, report=report))
    assert [a.info[REQUESTED_SPACEGROUP] for a in out] == [1]
    assert report.stage == "sample"
    assert report.n_in == 3 and report.n_out == 1
    assert report.dropped == {"incompatible": 2}
    assert {d.label for d in report.drops} == {"Cu1 @ 225", "Cu1 @ 229"}
    assert report.seconds > 0


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
    assert report.n_in == 3 and report.n_out == 2
    assert report.dropped == {"pyxtal_failed": 1}
    assert report.drops[0].label == "Cu2 @ 2"
    assert "long time" in report.drops[0].detail


def test_sample_survives_pyxtal_giving_up_inside_from_random(monkeypatch) -> None:
    real = pyxtal_package.pyxtal.from_random
    calls = []

    def flaky(self, *args, **kwargs):
        calls.append(kwargs["group"])
        if kwargs["group"] == 47:
            raise RuntimeError("long time to generate structure, check inputs")
        return real(self, *args, **kwargs)

    expected = list(sample([{"Cu": 2}, {"Cu": 1, "Ag": 1}], [1, 47, 123], rng=4))
    monkeypatch.setattr(pyxtal_package.pyxtal, "from_random", flaky)
    report = StageReport()
    out = list(sample([{"Cu": 2}, {"Cu": 1, "Ag": 1}], [1, 47, 123], rng=4, report=report))
    assert calls.count(47) == 2
    assert report.dropped == {"pyxtal_failed": 2}
    assert {d.label for d in report.drops} == {"Cu2 @ 47", "Cu1Ag1 @ 47"}
    # the other grid points come out, and exactly as without the failure
    assert [key(a) for a in out] == [key(a) for a in expected if a.info[REQUESTED_SPACEGROUP] != 47]
    assert report.n_out == len(out) == 4


def test_sample_respects_max_structures_and_draws_no_more(monkeypatch) -> None:
    real_draw = crystals._draw
    drawn = []

    def counting(*args):
        drawn.append(args[0])
        return real_draw(*args)

    monkeypatch.setattr(crystals, "_draw", counting)
    report = StageReport()
    out = list(
        sample(CUAG, GROUPS, min_atoms=2, max_atoms=3, max_structures=3, rng=1, report=report)
    )
    assert len(out) == 3 == report.n_out == len(drawn)
    assert all(2 <= len(a) <= 3 for a in out)
    assert list(sample(CUAG, GROUPS, max_structures=0, rng=1)) == []
    assert len(drawn) == 3


def test_a_capped_shuffled_sample_is_a_subset_of_the_whole(reference_sample) -> None:
    capped = list(sample(CUAG, GROUPS, max_atoms=3, max_structures=4, shuffle=True, rng=7))
    assert len(capped) == 4
    whole = by_uuid(reference_sample)
    assert all(whole[a.info[UUID]] == key(a) for a in capped)


@pytest.mark.parametrize(("low", "high"), [(1, 1), (2, 3), (3, None), (4, 4)])
def test_sample_keeps_only_formulas_in_the_atom_count_window(low: int, high: int | None) -> None:
    formulas = Formulas.range("Cu", 0, 5)
    report = StageReport()
    out = list(sample(formulas, [1], min_atoms=low, max_atoms=high, rng=0, report=report))
    upper = 4 if high is None else high
    assert sorted(len(a) for a in out) == list(range(low, upper + 1))
    assert report.n_in == len(out)  # trimmed formulas are not grid points


def test_sample_ignores_zero_counts() -> None:
    report = StageReport()
    out = list(
        sample([{"Cu": 2, "Ag": 0}, {"Ag": 0}, {"Cu": 0, "Ag": 1}], [1], rng=0, report=report)
    )
    assert [a.get_chemical_symbols() for a in out] == [["Cu", "Cu"], ["Ag"]]
    assert report.n_in == 2
    # the same grid point as if the zero had never been written
    assert key(out[0]) == key(next(sample([{"Cu": 2}], [1], rng=0)))


def test_sample_needs_no_radius_for_elements_it_does_not_draw() -> None:
    out = list(
        sample([{"Cu": 2, "Ag": 0}, {"Au": 9}], [1], max_atoms=4, tolerance={"Cu": 1.0}, rng=0)
    )
    assert len(out) == 1
    assert DistanceFilter({"Cu": 1.0})(out[0])


def tolerance_handed_to_pyxtal(monkeypatch, tolerance) -> object:
    """The ``tm`` that sample() gives pyxtal for ``tolerance`` (nothing is drawn)."""
    handed = []

    def spy(group, species, num_ions, dim, seed, kwargs):
        handed.append(kwargs["tm"])
        return Atoms("Cu", cell=[2, 2, 2], pbc=True)

    monkeypatch.setattr(crystals, "_draw", spy)
    list(sample([{"Cu": 1, "Ag": 1}], [1], tolerance=tolerance, rng=0))
    (tm,) = handed
    return tm


@pytest.mark.parametrize("prototype", TOLERANCE_PROTOTYPES)
def test_sample_hands_a_tolerance_prototype_to_pyxtal(monkeypatch, prototype: str) -> None:
    tm = tolerance_handed_to_pyxtal(monkeypatch, prototype)
    assert tm.prototype == prototype
    assert tm.get_tol("Cu", "Ag") == Tol_matrix(prototype=prototype).get_tol("Cu", "Ag")


@pytest.mark.parametrize(
    "tolerance", [0.8, {"Cu": 0.7, "Ag": 0.9}, DistanceFilter({"Cu": 0.7, "Ag": 0.9})]
)
def test_sample_hands_radii_to_pyxtal_as_pair_distances(monkeypatch, tolerance) -> None:
    radii = tolerance if isinstance(tolerance, DistanceFilter) else DistanceFilter(tolerance)
    tm = tolerance_handed_to_pyxtal(monkeypatch, tolerance)
    for a, b in [("Cu", "Cu"), ("Cu", "Ag"), ("Ag", "Cu"), ("Ag", "Ag")]:
        assert tm.get_tol(a, b) == pytest.approx(radii.radius(a) + radii.radius(b))


@pytest.mark.parametrize("tolerance", ["metallic", "atomic"])
def test_sample_draws_with_a_tolerance_prototype(tolerance: str) -> None:
    out = list(sample([{"Cu": 2}, {"Cu": 1, "Ag": 1}], [1, 2], tolerance=tolerance, rng=2))
    assert sorted((a.get_chemical_formula(), a.info["requested spacegroup"]) for a in out) == [
        ("AgCu", 1), ("AgCu", 2), ("Cu2", 1), ("Cu2", 2),
    ]
    table = Tol_matrix(prototype=tolerance)
    for atoms in out:  # no pair closer than the prototype's table allows
        i, j, d = neighbor_list("ijd", atoms, 4.0)
        symbols = atoms.get_chemical_symbols()
        for a, b, distance in zip(i, j, d, strict=True):
            assert distance >= table.get_tol(symbols[a], symbols[b]) - 1e-6


@pytest.mark.parametrize(
    "tolerance", [0.9, {"Cu": 0.8, "Ag": 0.9}, DistanceFilter({"Cu": 0.8, "Ag": 0.9})]
)
def test_sample_tolerance_radii_agree_with_the_distance_filter(tolerance) -> None:
    out = list(sample(CUAG, [1, 2, 221], max_atoms=3, tolerance=tolerance, rng=2))
    assert len(out) >= 8
    radii = tolerance if isinstance(tolerance, DistanceFilter) else DistanceFilter(tolerance)
    assert all(radii(a) for a in out)


@settings(max_examples=4, deadline=None)
@given(cu=st.floats(0.5, 0.9), ag=st.floats(0.5, 0.9), seed=st.integers(0, MAX_SEED))
def test_sampled_crystals_pass_a_distance_filter_with_the_same_radii(
    cu: float, ag: float, seed: int
) -> None:
    radii = DistanceFilter({"Cu": cu, "Ag": ag})
    report = StageReport()
    formulas = [{"Cu": 1, "Ag": 1}, {"Cu": 2, "Ag": 1}]
    out = list(sample(formulas, [1, 2], tolerance=radii, rng=seed, report=report))
    assert len(out) + report.n_dropped == 4
    assert all(radii(a) for a in out)


def test_sample_with_different_tolerances_gives_distinct_uuids() -> None:
    metallic = list(sample([{"Cu": 2}], [1, 2], tolerance="metallic", rng=2))
    radii = list(sample([{"Cu": 2}], [1, 2], tolerance=0.9, rng=2))
    for a, b in zip(metallic, radii, strict=True):
        assert a.info[RNG_SEED] == b.info[RNG_SEED]  # the same stream ...
        assert not np.array_equal(a.positions, b.positions)  # ... other structures ...
        assert a.info[UUID] != b.info[UUID]  # ... other ids


def test_sample_rejects_an_unknown_tolerance_prototype_listing_the_valid_ones() -> None:
    with pytest.raises(ValueError, match="unknown tolerance prototype 'soft'") as error:
        sample(CUAG, [1], tolerance="soft")
    assert all(repr(name) in str(error.value) for name in TOLERANCE_PROTOTYPES)
    with pytest.raises(TypeError, match="tolerance must be one of"):
        sample(CUAG, [1], tolerance=[1.0])
    with pytest.raises(ValueError, match="no radius for element"):
        sample(CUAG, [1], max_atoms=2, tolerance={"Cu": 1.0})


def test_sample_walks_all_groups_of_the_dimension_when_none_are_given(monkeypatch) -> None:
    visited = []

    def fake_draw(group, species, num_ions, dim, seed, kwargs):
        visited.append(group)
        return Atoms("Cu", cell=[2, 2, 2], pbc=True)

    monkeypatch.setattr(crystals, "_draw", fake_draw)
    for dim in (2, 1, 0):
        visited.clear()
        report = StageReport()
        out = list(sample([{"Cu": 4}], None, max_atoms=4, dim=dim, rng=0, report=report))
        assert report.n_in == MAX_GROUP[dim]
        assert len(out) == len(visited) == MAX_GROUP[dim] - report.dropped.get("incompatible", 0)
        assert visited == sorted(visited) and visited[0] == 1


def test_sample_draws_layers() -> None:
    out = list(sample([{"Cu": 2}], [1, 80], dim=2, rng=0))
    assert out and all(list(a.pbc) == [True, True, False] for a in out)


def test_sample_rejects_bad_input_before_drawing() -> None:
    with pytest.raises(ValueError, match="min_atoms"):
        sample(CUAG, [1], min_atoms=5, max_atoms=2)
    with pytest.raises(ValueError, match="min_atoms=0"):
        sample(CUAG, [1], min_atoms=0)
    with pytest.raises(ValueError, match="max_structures must be >= 0 or None, got -1"):
        sample(CUAG, [1], max_structures=-1)
    with pytest.raises(ValueError, match="formulas is empty"):
        sample([], [1])
    with pytest.raises(ValueError, match="spacegroups is empty"):
        sample(CUAG, [])
    with pytest.raises(ValueError, match=r"symmetry group 0 out of range: dim=3 allows 1\.\.230"):
        sample(CUAG, [0, 5])
    with pytest.raises(ValueError, match=r"symmetry group 81 out of range: dim=2 allows 1\.\.80"):
        sample(CUAG, [1, 81], dim=2)
    with pytest.raises(ValueError, match="dim must be one of"):
        sample(CUAG, [1], dim=5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="'Zz'"):
        sample([{"Zz": 1}], [1])
