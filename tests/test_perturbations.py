"""Tests of the perturbation stage: configs, operators, reproducibility, lineage, reports."""

from __future__ import annotations

import copy
import dataclasses
import functools
import pickle
import warnings
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from ase.calculators.singlepoint import SinglePointCalculator
from ase.data import covalent_radii
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from assyst_nodes.lineage import (
    LINEAGE,
    PERTURBATION,
    REPEAT,
    RNG_SEED,
    SEED,
    STEP,
    SUPERCELL,
    UUID,
    chain,
    parent_of,
    update_uuid,
)
from assyst_nodes.random import MAX_SEED, derive_seed
from assyst_nodes.reports import StageReport
from assyst_nodes.stages.perturb import (
    CannotApply,
    ElementScaledRattle,
    FunctionPerturbation,
    Perturbation,
    RandomChoice,
    Rattle,
    Series,
    Stretch,
    as_perturbation,
    perturb,
)

FAST = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def shift(structure: Atoms) -> Atoms:
    """A deterministic module-level perturbation (picklable): move every atom by 0.1 Å in x."""
    structure.positions[:, 0] += 0.1
    return structure


def nothing(structure: Atoms) -> None:
    """A callable that never gives a result."""
    return None


def refuse(structure: Atoms) -> Atoms:
    raise ValueError("not for this structure")


def copper(repeat: int = 2) -> Atoms:
    """A cubic Cu supercell with a uuid."""
    return update_uuid(bulk("Cu", cubic=True).repeat(repeat))


def small_cells(n: int) -> list[Atoms]:
    """``n`` distinct two-atom Cu cells with uuids."""
    return [
        update_uuid(
            Atoms("Cu2", positions=[[0, 0, 0], [1.8, 1.8, 0.01 * i]], cell=[3.6] * 3, pbc=True)
        )
        for i in range(n)
    ]


def fingerprint(structure: Atoms) -> tuple[bytes, bytes, tuple]:
    """Everything that must be reproduced bit for bit."""
    info = tuple(sorted((k, repr(v)) for k, v in structure.info.items()))
    return structure.positions.tobytes(), structure.cell.array.tobytes(), info


def by_uuid(structures: list[Atoms]) -> dict[str, tuple]:
    return {s.info[UUID]: fingerprint(s) for s in structures}


# --------------------------------------------------------------------------------------------
# strategies
# --------------------------------------------------------------------------------------------

seeds = st.none() | st.integers(0, MAX_SEED)
sigmas = st.floats(0, 1, allow_nan=False)
strains = st.just(0.0) | st.floats(1e-3, 0.3)


def rattles(rng: st.SearchStrategy = seeds) -> st.SearchStrategy:
    return st.builds(Rattle, sigmas, st.booleans(), rng)


def scaled_rattles(rng: st.SearchStrategy = seeds) -> st.SearchStrategy:
    references = st.none() | st.dictionaries(
        st.sampled_from(["Cu", "Ag", "Au", "Ni"]), st.floats(0.1, 3.0), min_size=1
    )
    return st.builds(ElementScaledRattle, sigmas, references, st.booleans(), rng)


def stretches(rng: st.SearchStrategy = seeds) -> st.SearchStrategy:
    return st.builds(Stretch, strains, strains, st.just(1e-3), rng)


def leaves(rng: st.SearchStrategy = seeds) -> st.SearchStrategy:
    return st.one_of(
        rattles(rng), scaled_rattles(rng), stretches(rng), st.just(FunctionPerturbation(shift))
    )


unseeded = leaves(st.none())
series = st.lists(unseeded, min_size=1, max_size=3).map(lambda items: Series(tuple(items)))
choices = st.builds(RandomChoice, unseeded | series, unseeded, st.floats(0, 1), seeds)
configs = st.one_of(leaves(), series, choices)


# --------------------------------------------------------------------------------------------
# configs: value semantics, str, validation
# --------------------------------------------------------------------------------------------


@FAST
@given(configs)
def test_configs_are_equal_hashable_and_survive_pickle_and_replace(config: Perturbation) -> None:
    for twin in (pickle.loads(pickle.dumps(config)), dataclasses.replace(config)):
        assert twin == config
        assert hash(twin) == hash(config)
        assert str(twin) == str(config)
    assert len({config, copy.deepcopy(config)}) == 1


def test_configs_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        Rattle(0.1).sigma = 0.2  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        Stretch(0.1, 0.1).rng = 3  # type: ignore[misc]


def test_element_scaled_rattle_reference_is_stored_sorted_and_frozen() -> None:
    a = ElementScaledRattle(0.1, {"Cu": 1.0, "Ag": 2.0})
    b = ElementScaledRattle(0.1, {"Ag": 2.0, "Cu": 1.0})
    assert a == b and hash(a) == hash(b)
    assert a.reference == (("Ag", 2.0), ("Cu", 1.0))


def test_str_is_the_step_name_without_seeds() -> None:
    rattle, stretch = Rattle(0.1, rng=7), Stretch(0.05, 0.05, rng=8)
    assert str(rattle) == "rattle(0.1)"
    assert str(Rattle(1)) == "rattle(1.0)"
    assert str(stretch) == "stretch(hydro=0.05, shear=0.05)"
    assert str(ElementScaledRattle(0.2, rng=1)) == "scaled_rattle(0.2)"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert str(rattle + stretch) == "rattle(0.1)+stretch(hydro=0.05, shear=0.05)"
    assert (
        str(RandomChoice(Stretch(0.1, 0.0), Stretch(0.0, 0.1), 0.5))
        == "random_choice(stretch(hydro=0.1, shear=0.0), stretch(hydro=0.0, shear=0.1), 0.5)"
    )


@pytest.mark.parametrize(
    ("build", "error", "match"),
    [
        (lambda: Rattle(-0.1), ValueError, r"sigma must be >= 0.*-0\.1"),
        (lambda: Rattle(float("nan")), ValueError, "sigma must be finite"),
        (lambda: Rattle("0.1"), TypeError, "sigma must be a number"),  # type: ignore[arg-type]
        (lambda: ElementScaledRattle(-1.0), ValueError, "sigma must be >= 0"),
        (lambda: ElementScaledRattle(0.1, {"Cu": 0.0}), ValueError, r"reference\['Cu'\]"),
        (lambda: ElementScaledRattle(0.1, {"Xx": 1.0}), ValueError, "not a chemical symbol"),
        (lambda: ElementScaledRattle(0.1, {}), ValueError, "at least one element"),
        (lambda: Stretch(1.0, 0.0), ValueError, r"hydro must be in \[0, 1\).*1\.0"),
        (lambda: Stretch(0.1, -0.1), ValueError, r"shear must be in \[0, 1\)"),
        (lambda: Stretch(0.5, 0.3), ValueError, "hydro \\+ 2 \\* shear must be < 1"),
        (lambda: Stretch(5e-4, 0.1), ValueError, "below minimum_strain"),
        (lambda: Stretch(0.1, 0.1, minimum_strain=-1), ValueError, "minimum_strain must be >= 0"),
        (lambda: RandomChoice(Rattle(0.1), Rattle(0.2), 1.5), ValueError, r"chance.*\[0, 1\]"),
        (lambda: RandomChoice(Rattle(0.1), Rattle(0.2), -0.1), ValueError, r"chance.*\[0, 1\]"),
        (lambda: RandomChoice(Rattle(0.1), 3, 0.5), TypeError, "perturbation must be"),
        (lambda: Rattle(0.1, rng=-1), ValueError, "rng seed"),
        (lambda: Rattle(0.1, rng=True), TypeError, "rng must be"),
        (lambda: Rattle(0.1, rng=np.random.default_rng(1)), TypeError, "plain seeds"),
        (lambda: Series(()), ValueError, "at least one"),
    ],
)
def test_invalid_configs_raise_naming_value_and_range(build, error, match) -> None:
    with pytest.raises(error, match=match):
        build()


def test_seeds_are_plain_ints() -> None:
    assert type(Rattle(0.1, rng=np.int64(5)).rng) is int


# --------------------------------------------------------------------------------------------
# operators and callables
# --------------------------------------------------------------------------------------------


def test_series_flattens_and_is_associative_in_str_value_and_effect() -> None:
    a, b, c = Rattle(0.1), Stretch(0.05, 0.02), Rattle(0.03)
    left, right = (a + b) + c, a + (b + c)
    assert left == right == Series((a, b, c))
    assert left.perturbations == (a, b, c)
    assert str(left) == str(right) == "rattle(0.1)+stretch(hydro=0.05, shear=0.02)+rattle(0.03)"
    cu = copper()
    assert by_uuid(perturb([cu], left, rng=4)) == by_uuid(perturb([cu], right, rng=4))


def test_series_applies_members_in_order_from_one_generator() -> None:
    a, b = Rattle(0.1), Stretch(0.1, 0.05)
    cu = copper()
    (out,) = perturb([cu], a + b, rng=11)
    generator = np.random.default_rng(out.info[RNG_SEED])
    expected = b.apply(a.apply(cu.copy(), generator), generator)
    np.testing.assert_array_equal(out.positions, expected.positions)
    np.testing.assert_array_equal(out.cell.array, expected.cell.array)
    (reverse,) = perturb([cu], b + a, rng=11)
    assert not np.array_equal(reverse.positions, out.positions)


def test_callables_are_accepted_wherever_a_perturbation_is() -> None:
    rattle = Rattle(0.1)
    assert str(rattle + shift) == "rattle(0.1)+shift"
    assert str(shift + rattle) == "shift+rattle(0.1)"
    assert str(RandomChoice(shift, rattle, 0.0)) == "random_choice(shift, rattle(0.1), 0.0)"
    assert str(as_perturbation(lambda s: s)) == "<lambda>"
    partial = functools.partial(shift)
    assert str(as_perturbation(partial)) == repr(partial)
    cu = copper()
    (out,) = perturb([cu], shift, rng=0)
    np.testing.assert_allclose(out.positions[:, 0], cu.positions[:, 0] + 0.1)
    assert out.info[STEP] == "shift" and out.info[PERTURBATION] == "shift"
    with pytest.raises(TypeError, match="perturbation must be"):
        as_perturbation(0.1)  # type: ignore[arg-type]


@pytest.mark.parametrize(("chance", "branch"), [(0.0, "a"), (1.0, "b")])
def test_random_choice_chance_0_picks_a_and_1_picks_b(chance: float, branch: str) -> None:
    a, b = Rattle(0.1), Stretch(0.1, 0.05)
    choice = RandomChoice(a, b, chance)
    outputs = perturb(small_cells(20), [choice, choice], rng=5)
    assert len(outputs) == 40
    expected = str(a if branch == "a" else b)
    assert {o.info[PERTURBATION] for o in outputs} == {expected}
    assert {o.info[STEP] for o in outputs} == {str(choice)}


def test_composites_take_their_seed_from_seeded_members() -> None:
    cells = small_cells(3)
    for build in (
        lambda: Rattle(0.1, rng=5) + Stretch(0.05, 0.05, rng=6),
        lambda: RandomChoice(Rattle(0.1, rng=1), Rattle(0.2), 0.5),
    ):
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no warning: the seeds are used
            config = build()
        assert config.base_seed is not None
        # perturb without rng: reproducible from the members' seeds alone
        assert by_uuid(perturb(cells, config)) == by_uuid(perturb(cells, build()))
    assert (Rattle(0.1) + Stretch(0.05, 0.05)).base_seed is None
    other = Rattle(0.1, rng=5) + Stretch(0.05, 0.05, rng=7)
    assert other.base_seed != (Rattle(0.1, rng=5) + Stretch(0.05, 0.05, rng=6)).base_seed
    assert RandomChoice(Rattle(0.1, rng=1), Rattle(0.2), 0.5, rng=3).base_seed == 3


# --------------------------------------------------------------------------------------------
# reproducibility
# --------------------------------------------------------------------------------------------

STAGE = [
    Rattle(0.1),
    Stretch(0.05, 0.05),
    Rattle(0.05) + Stretch(0.02, 0.01),
    RandomChoice(Rattle(0.2), Stretch(0.1, 0.0), 0.5),
]


@FAST
@given(st.integers(0, MAX_SEED), st.permutations(range(4)))
def test_same_seed_gives_identical_outputs_in_any_input_order(seed: int, order: list[int]) -> None:
    structures = small_cells(4)
    first = perturb(structures, STAGE, rng=seed)
    shuffled = perturb([structures[i] for i in order], STAGE, rng=seed)
    assert len(first) == len(shuffled) == 16
    assert by_uuid(first) == by_uuid(shuffled)


def test_outputs_are_bit_identical_per_parent_when_input_is_reversed() -> None:
    structures = small_cells(5)
    forward = perturb(structures, STAGE, rng=3)
    backward = perturb(structures[::-1], STAGE, rng=3)
    for parent in structures:
        uid = parent.info[UUID]
        mine = [fingerprint(s) for s in forward if parent_of(s) == uid]
        theirs = [fingerprint(s) for s in backward if parent_of(s) == uid]
        assert mine == theirs and len(mine) == len(STAGE)


def test_chunks_perturbed_in_separate_processes_give_the_same_outputs() -> None:
    """What N workers would do: split the input, perturb each chunk elsewhere, concatenate."""
    structures = small_cells(4)
    whole = perturb(structures, STAGE, rng=9)
    with ProcessPoolExecutor(max_workers=2) as pool:
        parts = pool.map(
            functools.partial(perturb, perturbations=STAGE, rng=9),
            [structures[:1], structures[1:]],
        )
        chunked = [atoms for part in parts for atoms in part]
    assert [fingerprint(s) for s in chunked] == [fingerprint(s) for s in whole]


def test_generator_rng_is_reduced_once_and_reproducible() -> None:
    structures = small_cells(3)
    one = perturb(structures, STAGE, rng=np.random.default_rng(42))
    two = perturb(structures, STAGE, rng=np.random.default_rng(42))
    assert by_uuid(one) == by_uuid(two)


def test_different_seeds_give_different_outputs() -> None:
    cu = copper()
    one, two = perturb([cu], STAGE[:3], rng=1), perturb([cu], STAGE[:3], rng=2)
    for a, b in zip(one, two, strict=True):
        assert a.info[UUID] != b.info[UUID]
        assert not np.array_equal(a.positions, b.positions)


def test_config_seed_overrides_perturb_rng() -> None:
    cu = copper()
    rattle = Rattle(0.1, rng=3)
    assert by_uuid(perturb([cu], rattle, rng=1)) == by_uuid(perturb([cu], rattle, rng=2))
    assert by_uuid(perturb([cu], Rattle(0.1), rng=3)) == by_uuid(perturb([cu], rattle, rng=9))


def test_direct_call_equals_the_first_draw_of_perturb() -> None:
    cu = copper()
    for config in (
        Rattle(0.1, rng=3),
        Stretch(0.1, 0.1, rng=4),
        RandomChoice(Rattle(0.1), Stretch(0.1, 0.1), 0.5, rng=5),
    ):
        assert fingerprint(config(cu.copy())) == fingerprint(perturb([cu], config)[0])


def test_direct_call_perturbs_in_place_as_the_reference() -> None:
    cu = copper()
    before, uid = cu.positions.copy(), cu.info[UUID]
    out = Rattle(0.1, rng=3)(cu)
    assert out is cu and not np.allclose(cu.positions, before)
    assert cu.info[LINEAGE] == [uid] and cu.info[STEP] == "rattle(0.1)"
    single = update_uuid(bulk("Cu", cubic=False))  # one atom: a supercell is a new structure
    grown = Rattle(0.1, create_supercells=True, rng=3)(single)
    assert grown is not single and len(single) == 1 and len(grown) == 8
    unseeded = Rattle(0.1)
    assert unseeded(cu).info[UUID] != unseeded(cu).info[UUID]  # fresh entropy each call


def test_same_structure_gets_different_draws_from_one_seeded_config() -> None:
    a, b = small_cells(2)
    rattle = Rattle(0.1, rng=3)
    da = rattle(a.copy()).positions - a.positions
    db = rattle(b.copy()).positions - b.positions
    assert not np.allclose(da, db)


def test_a_perturbation_listed_twice_gives_two_distinct_draws() -> None:
    cu = copper()
    one, two = perturb([cu], [Rattle(0.1), Rattle(0.1)], rng=0)
    assert one.info[UUID] != two.info[UUID]
    assert not np.array_equal(one.positions, two.positions)


def test_other_perturbations_in_the_list_do_not_change_a_perturbations_draw() -> None:
    cu = copper()
    (alone,) = perturb([cu], [Rattle(0.1)], rng=0)
    with_others = perturb([cu], [Stretch(0.1, 0.1), Rattle(0.2), Rattle(0.1)], rng=0)
    assert fingerprint(alone) == fingerprint(with_others[2])


# --------------------------------------------------------------------------------------------
# lineage and inputs
# --------------------------------------------------------------------------------------------


def test_lineage_appends_parent_keeps_seed_and_accumulates_perturbation() -> None:
    cu = copper()
    first = perturb([cu], [Rattle(0.1), Stretch(0.05, 0.05)], rng=1)
    second = perturb(first, [Rattle(0.02), Stretch(0.02, 0.0)], rng=2)
    assert len(second) == 4
    for child in second:
        parent = next(p for p in first if p.info[UUID] == parent_of(child))
        assert child.info[LINEAGE] == [cu.info[UUID], parent.info[UUID]]
        assert child.info[SEED] == cu.info[UUID]
        assert child.info[PERTURBATION] == f"{parent.info[PERTURBATION]}+{child.info[STEP]}"
    assert second[0].info[PERTURBATION] == "rattle(0.1)+rattle(0.02)"
    uuids = [s.info[UUID] for s in [cu, *first, *second]]
    assert len(set(uuids)) == len(uuids)


def test_outputs_are_structure_major_then_in_perturbation_order() -> None:
    a, b = small_cells(2)
    steps = [Rattle(0.1), Stretch(0.1, 0.0)]
    outputs = perturb([a, b], steps, rng=0)
    assert [(parent_of(o), o.info[STEP]) for o in outputs] == [
        (s.info[UUID], str(p)) for s in (a, b) for p in steps
    ]


def test_inputs_are_not_mutated_and_results_carry_no_calculator() -> None:
    cu = copper()
    cu.info[PERTURBATION] = "rattle(0.3)"
    cu.calc = SinglePointCalculator(cu, energy=-1.0, forces=np.zeros((len(cu), 3)))
    positions, cell, info = cu.positions.copy(), cu.cell.array.copy(), copy.deepcopy(cu.info)
    outputs = perturb([cu], [*STAGE, shift], rng=0)
    np.testing.assert_array_equal(cu.positions, positions)
    np.testing.assert_array_equal(cu.cell.array, cell)
    assert cu.info == info and cu.calc is not None
    assert all(o.calc is None and o is not cu for o in outputs)


def test_a_callable_returning_a_new_atoms_still_gets_the_parents_lineage() -> None:
    cu = copper()

    def rebuild(structure: Atoms) -> Atoms:
        return Atoms(
            structure.numbers, structure.positions * 1.01, cell=structure.cell * 1.01, pbc=True
        )

    (out,) = perturb([cu], rebuild, rng=0)
    assert out.info[LINEAGE] == [cu.info[UUID]] and out.info[SEED] == cu.info[UUID]
    assert out.info[STEP] == "rebuild"


def test_a_structure_without_uuid_gives_results_that_are_their_own_seed() -> None:
    plain = bulk("Cu", cubic=True)
    (out,) = perturb([plain], Rattle(0.1), rng=0)
    assert UUID not in plain.info
    # no structure carries the uuid minted for the input, so the result is a root (as the
    # reference's results of such inputs): its chain resolves from itself alone
    assert out.info[LINEAGE] == [] and out.info[SEED] == out.info[UUID]
    assert chain(out, [out]) == [out]
    (again,) = perturb([plain], Rattle(0.1), rng=0)
    assert again.info[UUID] == out.info[UUID]  # ids still derive from the geometry


def test_duplicate_input_uuids_are_rejected() -> None:
    cu = copper()
    with pytest.raises(ValueError, match="occurs twice"):
        perturb([cu, cu], Rattle(0.1), rng=0)


@pytest.mark.parametrize("retries", [0, -1, True, 1.5])
def test_retries_must_be_a_positive_int(retries: object) -> None:
    with pytest.raises(ValueError, match="retries"):
        perturb([copper()], Rattle(0.1), retries=retries)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# physics of each perturbation
# --------------------------------------------------------------------------------------------


def test_rattle_displacement_std_matches_sigma() -> None:
    cu = copper(10)  # 4000 atoms, 12000 components
    sigma = 0.07
    (out,) = perturb([cu], Rattle(sigma), rng=8)
    displacement = (out.positions - cu.positions).ravel()
    assert abs(displacement.std() / sigma - 1) < 0.03
    assert abs(displacement.mean()) < 5 * sigma / np.sqrt(displacement.size)
    np.testing.assert_array_equal(out.cell.array, cu.cell.array)


@pytest.mark.parametrize(
    "reference", [{"Cu": 1.0, "Ag": 3.0}, None], ids=["custom", "covalent_radii"]
)
def test_element_scaled_rattle_scales_per_element(reference: dict[str, float] | None) -> None:
    alloy = bulk("Cu", cubic=True).repeat(10)
    alloy.symbols[::2] = "Ag"
    alloy = update_uuid(alloy)
    sigma = 0.02
    (out,) = perturb([alloy], ElementScaledRattle(sigma, reference), rng=9)
    displacement = out.positions - alloy.positions
    lengths = reference or {"Cu": covalent_radii[29], "Ag": covalent_radii[47]}
    for symbol, length in lengths.items():
        mask = np.array(alloy.get_chemical_symbols()) == symbol
        assert abs(displacement[mask].std() / (sigma * length) - 1) < 0.05


def test_element_scaled_rattle_without_a_reference_for_an_element_cannot_apply() -> None:
    report = StageReport()
    assert perturb([copper()], ElementScaledRattle(0.1, {"Ag": 1.0}), report=report) == []
    (drop,) = report.drops
    assert drop.reason == "cannot_apply" and "Cu" in drop.detail


@FAST
@given(strains, strains, st.floats(0, 1e-3), st.integers(0, MAX_SEED))
def test_stretch_keeps_fractional_positions_and_bounds_strain(
    hydro: float, shear: float, minimum: float, seed: int
) -> None:
    assume(hydro + 2 * shear < 1)
    structure = update_uuid(bulk("NaCl", "rocksalt", a=5.64))  # triclinic primitive cell
    structure.positions += [0.1, 0.2, 0.3]
    out = Stretch(hydro, shear, minimum_strain=minimum, rng=seed)(structure.copy())
    np.testing.assert_allclose(
        out.get_scaled_positions(wrap=False),
        structure.get_scaled_positions(wrap=False),
        atol=1e-12,
    )
    strain = np.linalg.solve(structure.cell.array, out.cell.array) - np.eye(3)
    np.testing.assert_allclose(strain, strain.T, atol=1e-12)
    for values, bound in ((np.diag(strain), hydro), (strain[np.triu_indices(3, 1)], shear)):
        magnitude = np.abs(values)
        if bound == 0:
            np.testing.assert_allclose(magnitude, 0, atol=1e-12)
        else:
            assert np.all(magnitude <= bound + 1e-12)
            assert np.all(magnitude >= minimum - 1e-12)


def test_stretch_components_are_uniform_in_the_allowed_band_with_both_signs() -> None:
    stretch = Stretch(0.1, 0.04, minimum_strain=0.02)
    generator = np.random.default_rng(0)
    strains = np.array([stretch.strain(generator) for _ in range(2000)])
    normal = np.diagonal(strains, axis1=1, axis2=2).ravel()
    shears = strains[:, 0, 1]
    assert abs(np.abs(normal).mean() - 0.06) < 0.003  # mean of U(0.02, 0.1)
    assert abs(np.abs(shears).mean() - 0.03) < 0.002  # mean of U(0.02, 0.04)
    assert 0.45 < (normal > 0).mean() < 0.55
    assert np.abs(normal).min() >= 0.02 and np.abs(normal).max() <= 0.1


# --------------------------------------------------------------------------------------------
# cannot apply, retries, reports
# --------------------------------------------------------------------------------------------


def test_single_atom_rattle_is_reported_as_cannot_apply() -> None:
    single = update_uuid(bulk("Cu"))
    report = StageReport()
    outputs = perturb([single], [Rattle(0.1), Stretch(0.1, 0.1)], rng=0, report=report)
    assert [o.info[STEP] for o in outputs] == ["stretch(hydro=0.1, shear=0.1)"]
    (drop,) = report.drops
    assert drop.reason == "cannot_apply"
    assert drop.label == f"{single.info[UUID]} rattle(0.1)"
    assert (report.stage, report.n_in, report.n_out) == ("perturb", 2, 1)
    with pytest.raises(CannotApply, match="create_supercells"):
        Rattle(0.1, rng=0)(single)


@pytest.mark.parametrize("config", [Rattle(0.1, True), ElementScaledRattle(0.05, None, True)])
def test_single_atom_rattle_with_supercells_repeats_to_eight_atoms(config: Perturbation) -> None:
    single = bulk("Cu")
    single.info[REPEAT] = 0
    (out,) = perturb([update_uuid(single)], config, rng=0)
    assert len(out) == 8 and out.info[SUPERCELL] == "2x2x2"
    assert out.info[REPEAT] == 0  # the draw index of the parent crystal is kept
    np.testing.assert_allclose(out.cell.array, 2 * single.cell.array)


def test_supercell_repeats_short_periodic_axes_first() -> None:
    needle = update_uuid(Atoms("Cu", cell=[2.0, 2.0, 8.0], pbc=True))
    (out,) = perturb([needle], Rattle(0.01, create_supercells=True), rng=0)
    assert len(out) >= 8
    np.testing.assert_allclose(out.cell.lengths(), [6.0, 6.0, 8.0])
    slab = update_uuid(Atoms("Cu", cell=[3.0, 3.0, 3.0], pbc=[True, True, False]))
    (out,) = perturb([slab], Rattle(0.01, create_supercells=True), rng=0)
    assert len(out) >= 8 and out.cell.lengths()[2] == 3.0


def test_retries_exhausted_are_reported_with_an_always_rejecting_filter() -> None:
    calls = []

    def never(structure: Atoms) -> bool:
        calls.append(structure.info[RNG_SEED])
        return False

    cells = small_cells(2)
    report = StageReport()
    assert perturb(cells, [Rattle(0.1), shift], filters=never, retries=4, report=report) == []
    assert report.dropped == {"retries_exhausted": 4}
    assert len(calls) == 16 and len(set(calls)) == 16  # fresh draw each attempt
    assert all("4 attempts" in d.detail and "never 4" in d.detail for d in report.drops)
    assert (report.n_in, report.n_out, report.n_dropped) == (4, 0, 4)


def test_filters_are_retried_with_fresh_draws_until_kept() -> None:
    seen = []

    def third_time_lucky(structure: Atoms) -> bool:
        seen.append(structure)
        return len(seen) >= 3

    cu = copper()
    report = StageReport()
    (out,) = perturb(
        [cu], Rattle(0.1), filters=[lambda s: True, third_time_lucky], rng=6, report=report
    )
    assert out.info[RNG_SEED] == derive_seed(6, cu.info[UUID], "rattle(0.1)", 0, 2)
    assert len({s.info[UUID] for s in seen}) == 3
    assert report.flags["retried"] == 1 and report.n_dropped == 0


def test_callable_without_result_or_refusing_is_reported() -> None:
    report = StageReport()
    assert perturb([copper()], [nothing, refuse], retries=3, report=report) == []
    reasons = {d.label.split()[-1]: (d.reason, d.detail) for d in report.drops}
    assert reasons["nothing"][0] == "retries_exhausted" and "no result 3" in reasons["nothing"][1]
    assert reasons["refuse"] == ("cannot_apply", "ValueError: not for this structure")


def test_random_choice_mixture_is_not_skewed_by_a_filter_rejecting_one_branch() -> None:
    a, b = Rattle(0.05), Stretch(0.05, 0.0)
    rejected = []

    def reject_half_of_b(structure: Atoms) -> bool:
        if structure.info[PERTURBATION] != str(b):
            return True
        keep = int(structure.info[UUID][:8], 16) % 2 == 0
        rejected.append(not keep)
        return keep

    n, chance = 1000, 0.3
    report = StageReport()
    outputs = perturb(
        small_cells(n), RandomChoice(a, b, chance), filters=reject_half_of_b, rng=12, report=report
    )
    assert sum(rejected) > 100  # the filter really hits branch b hard
    chosen_b = sum(o.info[PERTURBATION] == str(b) for o in outputs)
    chosen_b += sum(str(b) in d.detail for d in report.drops)
    assert abs(chosen_b / n - chance) < 4 * np.sqrt(chance * (1 - chance) / n)
    # re-drawing the branch per attempt would give about 0.15 / 0.85 = 0.18 here
    assert abs(chosen_b / n - 0.18) > 0.06


def test_distance_filter_rejections_are_retried() -> None:
    try:
        from assyst_nodes.stages.filter import DistanceFilter
    except ImportError:  # the filters module is developed in parallel
        pytest.skip("assyst_nodes.stages.filter.DistanceFilter is not available")
    keep = DistanceFilter({"Cu": 1.1})
    report = StageReport()
    outputs = perturb(small_cells(5), Rattle(0.4), filters=keep, retries=50, rng=2, report=report)
    assert outputs and all(keep(o) for o in outputs)
    assert report.n_out + report.n_dropped == report.n_in == 5
