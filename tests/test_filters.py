"""Tests of assyst_nodes.stages.filter: verdicts, algebra, value semantics, reports."""

from __future__ import annotations

import builtins
import itertools
import math
import pickle
import time
from collections.abc import Callable

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk, molecule
from ase.calculators.calculator import Calculator
from ase.calculators.emt import EMT
from ase.calculators.singlepoint import SinglePointCalculator
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from assyst_nodes.lineage import UUID, update_uuid
from assyst_nodes.reports import StageReport
from assyst_nodes.stages import filter as F
from assyst_nodes.stages.filter import (
    AndFilter,
    AspectFilter,
    DistanceFilter,
    EnergyFilter,
    FilterBase,
    ForceFilter,
    MissingResultError,
    NotFilter,
    OrFilter,
    PredicateFilter,
    VolumeFilter,
    apply_filters,
)

SETTINGS = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
ELEMENTS = ("Cu", "Ag", "Au")


def dimer(distance: float, symbols: str = "CuAg", cell: float | None = None) -> Atoms:
    """Two atoms ``distance`` Å apart along x, in a big periodic cell if ``cell`` is given."""
    atoms = Atoms(symbols, positions=[[0.0, 0.0, 0.0], [distance, 0.0, 0.0]])
    if cell is not None:
        atoms.set_cell([cell, cell, cell])
        atoms.pbc = True
        atoms.positions += cell / 4
    return atoms


def has_even_atom_count(structure: Atoms) -> bool:
    """A module-level (picklable) predicate."""
    return len(structure) % 2 == 0


def contains_copper(structure: Atoms) -> bool:
    """Another module-level predicate."""
    return "Cu" in structure.get_chemical_symbols()


# --------------------------------------------------------------------------------------------
# brute-force reference for DistanceFilter
# --------------------------------------------------------------------------------------------


def _full_basis(cell: np.ndarray, pbc: np.ndarray) -> np.ndarray:
    """``cell`` with zero/degenerate non-periodic rows replaced so that it can be inverted."""
    if abs(np.linalg.det(cell)) > 1e-8:
        return cell
    periodic = cell[pbc]
    _, _, vt = np.linalg.svd(periodic) if len(periodic) else (None, None, np.eye(3))
    filler = iter(vt[len(periodic) :])
    full = cell.copy()
    for k in range(3):
        if not pbc[k]:
            full[k] = next(filler)
    return full


def brute_force_margin(structure: Atoms, radii: dict[str, float] | float) -> float:
    """min over all pairs and images of d_ij - (r_i + r_j) (Å), by an explicit image loop."""
    symbols = structure.get_chemical_symbols()
    r = np.array([radii if isinstance(radii, float) else radii[s] for s in symbols])
    cutoff = 2 * r.max() + 1e-6
    pos = structure.positions
    cell = structure.cell.array
    pbc = structure.pbc
    full = _full_basis(cell, pbc)
    inverse = np.linalg.inv(full)
    frac = pos @ inverse
    recip_norms = np.linalg.norm(inverse.T, axis=1)
    ranges = []
    for k in range(3):
        if pbc[k]:
            spread = frac[:, k].max() - frac[:, k].min()
            n = math.ceil(cutoff * recip_norms[k] + spread) + 1
            ranges.append(range(-n, n + 1))
        else:
            ranges.append(range(1))
    shifts = np.array(list(itertools.product(*ranges)), dtype=float)
    offsets = shifts @ cell  # (S, 3)
    margin = math.inf
    for i in range(len(structure)):
        for j in range(len(structure)):
            vectors = pos[j] - pos[i] + offsets
            d = np.linalg.norm(vectors, axis=1)
            if i == j:
                d = d[np.any(shifts != 0, axis=1)]
            if len(d):
                margin = min(margin, float(d.min()) - (r[i] + r[j]))
    return margin


@st.composite
def random_structures(draw: st.DrawFn, max_atoms: int = 6) -> Atoms:
    """Small random structures: sheared full cells, any pbc, atoms also outside the cell."""
    lengths = draw(st.lists(st.floats(0.7, 4.0), min_size=3, max_size=3))
    shear = draw(st.lists(st.floats(-0.4, 0.4), min_size=6, max_size=6))
    cell = np.diag(lengths)
    for (row, col), s in zip([(0, 1), (0, 2), (1, 0), (1, 2), (2, 0), (2, 1)], shear, strict=True):
        cell[row, col] = s * lengths[row]
    n = draw(st.integers(1, max_atoms))
    frac = np.array(draw(st.lists(st.floats(-0.2, 1.2), min_size=3 * n, max_size=3 * n)))
    symbols = draw(st.lists(st.sampled_from(ELEMENTS), min_size=n, max_size=n))
    pbc = draw(st.tuples(st.booleans(), st.booleans(), st.booleans()))
    return Atoms(symbols, positions=frac.reshape(n, 3) @ cell, cell=cell, pbc=pbc)


@st.composite
def degenerate_structures(draw: st.DrawFn) -> Atoms:
    """Structures whose cell is singular: molecules without cell, wires and slabs."""
    kind = draw(st.sampled_from(["molecule", "wire", "slab"]))
    n = draw(st.integers(1, 6))
    symbols = draw(st.lists(st.sampled_from(ELEMENTS), min_size=n, max_size=n))
    coords = np.array(draw(st.lists(st.floats(-2.0, 4.0), min_size=3 * n, max_size=3 * n)))
    coords = coords.reshape(n, 3)
    cell = np.zeros((3, 3))
    if kind == "molecule":
        return Atoms(symbols, positions=coords)
    a = draw(st.floats(0.8, 3.5))
    cell[0] = [a, 0.0, 0.0]
    pbc = (True, False, False)
    if kind == "slab":
        b = draw(st.floats(0.8, 3.5))
        cell[1] = [draw(st.floats(-0.4, 0.4)) * b, b, 0.0]
        pbc = (True, True, False)
    return Atoms(symbols, positions=coords, cell=cell, pbc=pbc)


radii_dicts = st.fixed_dictionaries({e: st.floats(0.0, 1.6) for e in ELEMENTS})


# --------------------------------------------------------------------------------------------
# DistanceFilter
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("cell", [None, 12.0])
def test_distance_filter_keeps_dimer_just_above_and_rejects_just_below_radius_sum(
    cell: float | None,
) -> None:
    check = DistanceFilter({"Cu": 1.0, "Ag": 1.5})
    assert check(dimer(2.5 + 1e-6, cell=cell))
    assert not check(dimer(2.5 - 1e-6, cell=cell))


def test_distance_filter_keeps_dimer_exactly_at_radius_sum() -> None:
    assert DistanceFilter(1.0)(dimer(2.0, "Cu2"))


def test_distance_filter_sees_an_atom_and_its_own_periodic_image_in_a_tiny_cell() -> None:
    single = Atoms("Cu", positions=[[0.1, 0.2, 0.3]], cell=[2.0, 2.0, 2.0], pbc=True)
    assert not DistanceFilter(1.01)(single)
    assert DistanceFilter(0.99)(single)
    flat = Atoms("Cu", cell=[10.0, 10.0, 1.5], pbc=True)
    assert not DistanceFilter(0.8)(flat)
    flat.pbc = (True, True, False)  # the short direction is no longer periodic
    assert DistanceFilter(0.8)(flat)


def test_distance_filter_applies_mixed_radii_per_element_pair() -> None:
    check = DistanceFilter({"Cu": 1.0, "Ag": 2.0})
    # Cu-Cu at 2.1 Å is fine (>= 2.0), Cu-Ag at 2.9 Å is not (< 3.0)
    structure = Atoms("Cu2Ag", positions=[[0, 0, 0], [2.1, 0, 0], [2.1 + 2.9, 0, 0]])
    assert not check(structure)
    structure.positions[2, 0] = 2.1 + 3.1
    assert check(structure)
    structure.positions[1, 0] = 1.9  # now Cu-Cu is too close
    assert not check(structure)


def test_distance_filter_on_non_periodic_molecule_ignores_the_cell() -> None:
    water = molecule("H2O")  # O-H 0.9686 Å, H-H 1.526 Å, no cell
    assert DistanceFilter(0.48)(water)
    assert not DistanceFilter(0.49)(water)
    assert DistanceFilter({"H": 0.2, "O": 0.7})(water)
    assert not DistanceFilter({"H": 0.3, "O": 0.7})(water)
    # atoms near opposite faces are close only through the periodic boundary
    pair = Atoms("Cu2", positions=[[0.1, 1, 1], [2.9, 1, 1]], cell=[3, 3, 3], pbc=False)
    assert DistanceFilter(0.5)(pair)
    pair.pbc = (True, False, False)
    assert not DistanceFilter(0.5)(pair)
    pair.pbc = (False, True, True)
    assert DistanceFilter(0.5)(pair)


def test_distance_filter_rejects_coincident_atoms_unless_radius_is_zero() -> None:
    twins = Atoms("Cu2", positions=[[1, 1, 1], [1, 1, 1]], cell=[3, 3, 3], pbc=True)
    assert not DistanceFilter(0.1)(twins)
    assert DistanceFilter(0.0)(twins)


def test_distance_filter_keeps_empty_and_single_atom_molecules() -> None:
    assert DistanceFilter(1.0)(Atoms())
    assert DistanceFilter(1.0)(Atoms("Cu"))


def test_distance_filter_uses_only_radii_of_elements_present() -> None:
    # a huge radius of an absent element must not matter (nor blow up the cutoff)
    check = DistanceFilter({"Cu": 1.0, "Ag": 50.0})
    assert check(bulk("Cu", a=3.7))


def test_distance_filter_with_tiny_radius_stays_fast() -> None:
    # the neighbour-list cutoff never shrinks below 1 Å: with a cutoff of ~1e-300 Å matscipy
    # took ~0.5 s per small non-periodic structure (its bin count grows as (size / cutoff)^3)
    structures = [
        Atoms("CuAu", [[0.2, 1.1, 0.0], [1.6, -0.2, -0.05]], cell=[2, 2, 0.7], pbc=[1, 0, 0]),
        Atoms("CuAu", [[0.2, 1.1, 0.0], [1.6, -0.2, 4.05]], cell=[2, 2, 0.7], pbc=[0, 0, 1]),
        Atoms("Cu", [[0.27, 0.22, 0.03]], cell=[0.7, 0.7, 0.7], pbc=False),
    ]
    start = time.perf_counter()
    for structure in structures:
        assert DistanceFilter(1e-300)(structure)
        assert DistanceFilter({"Cu": 5e-324, "Au": 0.0})(structure)
    assert time.perf_counter() - start < 0.5


def test_distance_filter_names_missing_elements_and_known_ones() -> None:
    check = DistanceFilter({"Cu": 1.0, "Ag": 1.2})
    with pytest.raises(ValueError, match=r"Au, Ni.*knows Ag, Cu"):
        check(Atoms("AuNiCu", positions=np.eye(3) * 3))
    with pytest.raises(ValueError, match="Au"):
        check.radius("Au")
    assert check.radius("Ag") == 1.2
    assert DistanceFilter(0.7).radius("Zr") == 0.7


def test_distance_filter_rejects_periodic_structure_with_dependent_cell_vectors() -> None:
    bad = Atoms("Cu", cell=[[1, 0, 0], [0, 0, 0], [0, 0, 1]], pbc=True)
    with pytest.raises(ValueError, match="linearly dependent"):
        DistanceFilter(0.4)(bad)


@SETTINGS
@given(structure=random_structures(), radii=radii_dicts)
def test_distance_filter_agrees_with_brute_force_image_loop(
    structure: Atoms, radii: dict[str, float]
) -> None:
    margin = brute_force_margin(structure, radii)
    assume(abs(margin) > 1e-7)
    assert DistanceFilter(radii)(structure) == (margin >= 0)


@settings(SETTINGS, max_examples=60)
@given(structure=degenerate_structures(), radius=st.floats(0.0, 1.6))
def test_distance_filter_agrees_with_brute_force_for_molecules_wires_and_slabs(
    structure: Atoms, radius: float
) -> None:
    margin = brute_force_margin(structure, radius)
    assume(abs(margin) > 1e-7)
    assert DistanceFilter(radius)(structure) == (margin >= 0)


def test_distance_filter_explain_names_the_closest_pair() -> None:
    text = DistanceFilter({"Cu": 1.0, "Ag": 1.5}).explain(dimer(2.0))
    assert "Cu0-Ag1" in text and "2 Å < 2.5 Å" in text


# --------------------------------------------------------------------------------------------
# AspectFilter and VolumeFilter
# --------------------------------------------------------------------------------------------


def test_aspect_filter_measures_longest_vector_over_smallest_height() -> None:
    check = AspectFilter(3.0, measure="heights")
    assert check.aspect_ratio(Atoms(cell=[2, 2, 2], pbc=True)) == pytest.approx(1.0)
    assert check.aspect_ratio(Atoms(cell=[1, 2, 3], pbc=True)) == pytest.approx(3.0)
    assert check(Atoms(cell=[1, 2, 3], pbc=True))  # the bound is inclusive
    assert not check(Atoms(cell=[1, 2, 3.01], pbc=True))


def test_aspect_filter_judges_the_lattice_not_the_choice_of_basis() -> None:
    # a cube given with c' = c + 15 a: the raw cell looks elongated, the lattice is not
    skewed = Atoms(cell=np.array([[2.0, 0, 0], [0, 2.0, 0], [30.0, 0, 2.0]]), pbc=True)
    heights = AspectFilter(6.0, measure="heights")
    assert heights.aspect_ratio(skewed) == pytest.approx(1.0)
    assert heights(skewed)
    assert not AspectFilter(6.0)(skewed)  # the reference's measure judges the basis: ~15
    # three vectors of length 1 spanning a cell only 0.1 Å thick, but a compact lattice
    in_plane = math.sqrt(1 - 0.1**2)
    flat = [[1, 0, 0], [0.5, math.sqrt(3) / 2, 0], [in_plane * 0.8, in_plane * 0.6, 0.1]]
    assert AspectFilter(3.0, measure="heights")(Atoms(cell=flat, pbc=True))
    # a truly elongated lattice stays rejected in any basis
    tall = Atoms(cell=np.array([[1.0, 0, 0], [0, 1.0, 0], [3.0, 2.0, 7.0]]), pbc=True)
    assert AspectFilter(6.5, measure="heights").aspect_ratio(tall) == pytest.approx(7.0)
    assert not AspectFilter(6.5, measure="heights")(tall)


def test_aspect_filter_by_default_measures_as_the_reference_package() -> None:
    """Longest over shortest cell vector (assyst 1.0's ``c / a`` of the sorted lengths)."""
    assert AspectFilter().measure == "lengths" and str(AspectFilter()) == "aspect(6.0)"
    check = AspectFilter(3.0)
    assert check.aspect_ratio(Atoms(cell=[1, 2, 3], pbc=True)) == 3.0
    assert check(Atoms(cell=[1, 2, 3], pbc=True)) and not check(Atoms(cell=[1, 2, 3.01], pbc=True))
    # three unit vectors spanning a sheet 0.1 Å thick: 1 by lengths, ~10 by heights
    in_plane = math.sqrt(1 - 0.1**2)
    flat = Atoms(cell=[[1, 0, 0], [0.5, math.sqrt(3) / 2, 0],
                       [in_plane * 0.8, in_plane * 0.6, 0.1]], pbc=True)
    assert AspectFilter(1.01)(flat)
    assert AspectFilter(1.01, measure="heights").aspect_ratio(flat) > 1.01
    assert str(AspectFilter(2.0, measure="heights")) == "aspect(2.0, heights)"
    with pytest.raises(ValueError, match=r"measure must be one of 'lengths', 'heights', got 'x'"):
        AspectFilter(measure="x")


def test_aspect_filter_rejects_zero_volume_cell() -> None:
    assert not AspectFilter(6.0, measure="heights")(molecule("H2O"))


def test_volume_filter_bounds_volume_per_atom_inclusively() -> None:
    structure = Atoms("Cu2", positions=[[0, 0, 0], [1, 1, 1]], cell=[2, 2, 5], pbc=True)
    assert VolumeFilter.volume_per_atom(structure) == pytest.approx(10.0)
    assert VolumeFilter(10.0, 10.0)(structure)
    assert VolumeFilter(minimum=5.0)(structure)
    assert not VolumeFilter(maximum=9.9)(structure)
    assert not VolumeFilter(minimum=10.1)(structure)
    assert VolumeFilter()(structure)
    assert not VolumeFilter()(Atoms(cell=[1, 1, 1], pbc=True))  # no atoms


# --------------------------------------------------------------------------------------------
# EnergyFilter and ForceFilter
# --------------------------------------------------------------------------------------------


def with_results(structure: Atoms, **results: object) -> Atoms:
    structure.calc = SinglePointCalculator(structure, **results)
    return structure


def test_energy_filter_bounds_energy_per_atom_from_single_point_results() -> None:
    structure = with_results(bulk("Cu") * (2, 1, 1), energy=-6.0)  # -3 eV/atom
    assert EnergyFilter.energy_per_atom(structure) == pytest.approx(-3.0)
    assert EnergyFilter(max_energy=-3.0)(structure)
    assert not EnergyFilter(max_energy=-3.1)(structure)
    assert EnergyFilter(min_energy=-3.0, max_energy=0.0)(structure)
    assert not EnergyFilter(min_energy=-2.9)(structure)


def test_force_filter_bounds_largest_force_norm() -> None:
    structure = with_results(bulk("Cu") * (2, 1, 1), forces=[[3.0, 4.0, 0.0], [0.0, 0.0, 1.0]])
    assert ForceFilter.largest_force(structure) == pytest.approx(5.0)
    assert ForceFilter(5.0)(structure)
    assert not ForceFilter(4.99)(structure)


@pytest.mark.parametrize("check", [EnergyFilter(max_energy=0.0), ForceFilter(1.0)])
def test_calculator_filters_apply_missing_policy_without_results(check: FilterBase) -> None:
    bare = bulk("Cu")
    with pytest.raises(MissingResultError, match="Cu"):
        check(bare)  # default policy: raise, as the reference implementation
    assert type(check)(**{**vars(check), "if_missing": "keep"})(bare)
    assert not type(check)(**{**vars(check), "if_missing": "reject"})(bare)
    assert issubclass(MissingResultError, ValueError)


def test_energy_filter_treats_forces_only_and_stale_results_as_missing() -> None:
    forces_only = with_results(bulk("Cu"), forces=[[0.0, 0.0, 0.0]])
    assert EnergyFilter(max_energy=-100.0, if_missing="keep")(forces_only)
    assert not EnergyFilter(max_energy=100.0, if_missing="reject")(forces_only)
    stale = with_results(bulk("Cu"), energy=10.0, forces=[[0.0, 0.0, 9.0]])
    stale.positions += 0.1  # results belong to the old positions
    assert EnergyFilter.energy_per_atom(stale) is None
    assert ForceFilter.largest_force(stale) is None
    assert EnergyFilter(max_energy=0.0, if_missing="keep")(stale)
    assert not ForceFilter(1.0, if_missing="reject")(stale)


def test_calculator_filters_reject_nan_whatever_the_policy() -> None:
    nan_energy = with_results(bulk("Cu"), energy=math.nan)
    assert not EnergyFilter()(nan_energy)
    assert not EnergyFilter(if_missing="keep")(nan_energy)
    nan_force = with_results(bulk("Cu") * (2, 1, 1), forces=[[0, 0, 0], [0, math.nan, 0]])
    assert not ForceFilter(100.0)(nan_force)


class _MustNotCalculate(Calculator):
    implemented_properties = ("energy", "forces")

    def calculate(self, *args: object, **kwargs: object) -> None:
        raise AssertionError("a filter triggered a calculation")


def test_calculator_filters_never_trigger_a_calculation() -> None:
    structure = bulk("Cu")
    structure.calc = _MustNotCalculate()
    # no results -> missing -> keep
    assert EnergyFilter(max_energy=-10.0, if_missing="keep")(structure)
    assert ForceFilter(0.0, if_missing="keep")(structure)
    computed = bulk("Cu", a=3.6)
    computed.calc = EMT()
    energy = computed.get_potential_energy()
    assert EnergyFilter.energy_per_atom(computed) == pytest.approx(energy)
    assert not EnergyFilter(max_energy=energy - 1e-3)(computed)


# --------------------------------------------------------------------------------------------
# validation
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: DistanceFilter(-0.5), r"-0\.5"),
        (lambda: DistanceFilter({"Cu": 1.0, "Ag": -2.0}), r"Ag.*-2\.0"),
        (lambda: DistanceFilter(math.nan), "NaN"),
        (lambda: DistanceFilter({"Xx": 1.0}), "'Xx' is not a chemical symbol"),
        (lambda: DistanceFilter({}), "at least one element"),
        (lambda: DistanceFilter("1.0"), "must be a number"),  # type: ignore[arg-type]
        (lambda: AspectFilter(0.5), r"maximum_aspect_ratio must be >= 1, got 0\.5"),
        (lambda: VolumeFilter(40.0, 5.0), r"minimum must be <= maximum.*40\.0 > 5\.0"),
        (lambda: VolumeFilter(minimum=-1.0), r"minimum must be > 0.*-1\.0"),
        (lambda: VolumeFilter(maximum=0.0), r"maximum must be > 0"),
        (lambda: EnergyFilter(1.0, 0.0), "min_energy must be <= max_energy"),
        (lambda: EnergyFilter(if_missing="ignore"), "'keep', 'reject', 'raise'.*'ignore'"),
        (lambda: ForceFilter(-1.0), r"max_force must be >= 0.*-1\.0"),
        (lambda: ForceFilter(math.nan), "NaN"),
        (lambda: ForceFilter(1.0, if_missing="error"), "if_missing"),  # type: ignore[arg-type]
    ],
)
def test_invalid_settings_raise_value_error_naming_the_value(
    build: Callable[[], FilterBase], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        build()


def test_combinators_reject_non_callable_operands() -> None:
    with pytest.raises(TypeError):
        DistanceFilter(1.0) & 3  # type: ignore[operator]
    with pytest.raises(TypeError):
        AndFilter(DistanceFilter(1.0), "x")  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# algebra, value semantics, str
# --------------------------------------------------------------------------------------------

leaf_filters = st.one_of(
    st.builds(DistanceFilter, st.floats(0.0, 1.5)),
    st.builds(DistanceFilter, radii_dicts),
    st.builds(AspectFilter, st.floats(1.0, 4.0)),
    st.builds(VolumeFilter, st.none() | st.floats(0.5, 5.0), st.none() | st.floats(5.0, 30.0)),
    st.builds(PredicateFilter, st.sampled_from([has_even_atom_count, contains_copper])),
)
composite_filters = st.recursive(
    leaf_filters,
    lambda inner: st.one_of(
        st.builds(AndFilter, inner, inner),
        st.builds(OrFilter, inner, inner),
        st.builds(NotFilter, inner),
    ),
    max_leaves=6,
)


@SETTINGS
@given(a=composite_filters, b=composite_filters, s=random_structures(max_atoms=3))
def test_operators_follow_boolean_algebra(a: FilterBase, b: FilterBase, s: Atoms) -> None:
    va, vb = a(s), b(s)
    assert (a & b)(s) == (va and vb)
    assert (a | b)(s) == (va or vb)
    assert (~a)(s) == (not va)
    assert (~~a)(s) == va
    assert (~(a & b))(s) == ((~a) | (~b))(s)
    assert (~(a | b))(s) == ((~a) & (~b))(s)
    assert (a & ~a)(s) is False and (a | ~a)(s) is True


@SETTINGS
@given(f=composite_filters, s=random_structures(max_atoms=3))
def test_first_rejecting_leaf_is_none_exactly_when_kept(f: FilterBase, s: Atoms) -> None:
    blame = f.first_rejecting_leaf(s)
    assert (blame is None) == f(s)
    if blame is not None:
        assert not blame(s)


@SETTINGS
@given(a=leaf_filters, b=leaf_filters, c=leaf_filters, s=random_structures(max_atoms=3))
def test_and_blames_the_first_rejecting_operand(
    a: FilterBase, b: FilterBase, c: FilterBase, s: Atoms
) -> None:
    rejecting = [x for x in (a, b, c) if not x(s)]
    assert (a & b & c).first_rejecting_leaf(s) == (rejecting[0] if rejecting else None)
    either = a | b
    assert either.first_rejecting_leaf(s) in (None, either)
    assert (~a).first_rejecting_leaf(s) in (None, ~a)


@SETTINGS
@given(f=composite_filters)
def test_filters_hash_compare_and_pickle_by_value(f: FilterBase) -> None:
    clone = pickle.loads(pickle.dumps(f))
    assert clone == f and hash(clone) == hash(f) and str(clone) == str(f)
    assert {f: 1}[clone] == 1
    assert f != ~f


def test_filter_values_are_equal_regardless_of_construction_order_and_number_type() -> None:
    assert DistanceFilter({"Cu": 1, "Ag": 2.0}) == DistanceFilter({"Ag": 2.0, "Cu": 1.0})
    assert DistanceFilter({"Cu": 1.0}).radii == (("Cu", 1.0),)
    assert eval(repr(DistanceFilter({"Cu": 1.0}))) == DistanceFilter({"Cu": 1.0})
    assert DistanceFilter(1) == DistanceFilter(1.0) and str(DistanceFilter(1)) == "distance(1.0)"
    assert DistanceFilter(1.0) != DistanceFilter(1.1)
    volume = VolumeFilter(minimum=1.0)
    assert AndFilter(AspectFilter(), volume) == AspectFilter() & VolumeFilter(minimum=1.0)
    assert AspectFilter() & VolumeFilter() != VolumeFilter() & AspectFilter()
    with pytest.raises(AttributeError):
        AspectFilter().maximum_aspect_ratio = 2.0  # type: ignore[misc]


@pytest.mark.parametrize(
    ("check", "text"),
    [
        (DistanceFilter({"Cu": 1.28, "Ag": 1.44}), "distance(Ag=1.44, Cu=1.28)"),
        (DistanceFilter(1.0), "distance(1.0)"),
        (AspectFilter(), "aspect(6.0)"),
        (VolumeFilter(5.0, 40.0), "volume(min=5.0, max=40.0)"),
        (VolumeFilter(maximum=40), "volume(max=40.0)"),
        (EnergyFilter(max_energy=0.0), "energy(max=0.0)"),
        (EnergyFilter(-5, 0, if_missing="reject"), "energy(min=-5.0, max=0.0, if_missing=reject)"),
        (ForceFilter(5.0), "force(max=5.0)"),
        (DistanceFilter(1.0) & AspectFilter(6.0), "(distance(1.0) & aspect(6.0))"),
        (AspectFilter(2.0) | ~VolumeFilter(1.0, 2.0), "(aspect(2.0) | ~volume(min=1.0, max=2.0))"),
        (PredicateFilter(contains_copper) & AspectFilter(), "(contains_copper & aspect(6.0))"),
        (has_even_atom_count | AspectFilter(), "(has_even_atom_count | aspect(6.0))"),
    ],
)
def test_str_is_short_and_readable(check: FilterBase, text: str) -> None:
    assert str(check) == text


# --------------------------------------------------------------------------------------------
# the filter stage function
# --------------------------------------------------------------------------------------------


def _population() -> list[Atoms]:
    good = bulk("Cu", a=3.6)  # nearest neighbours 2.55 Å, 11.7 Å^3/atom
    squeezed = bulk("Cu", a=2.6)  # too close
    long = bulk("Cu", "fcc", a=3.6, cubic=True)
    long.set_cell(np.diag([3.6, 3.6, 30.0]), scale_atoms=False)  # too elongated, sparse
    sparse = bulk("Cu", a=5.0)  # 31 Å^3/atom
    structures = [good, squeezed, long, sparse, good.copy()]
    for s in structures:
        update_uuid(s, step="test")
    return structures


def test_filter_keeps_input_objects_in_order_and_reports_rejections_per_leaf() -> None:
    structures = _population()
    uuids = [s.info[UUID] for s in structures]
    report = StageReport()
    checks = [DistanceFilter(1.2), AspectFilter(6.0), VolumeFilter(maximum=20.0)]
    kept = F.filter(structures, checks, report)
    assert [id(s) for s in kept] == [id(structures[0]), id(structures[4])]
    assert [s.info[UUID] for s in structures] == uuids
    assert report.stage == "((distance(1.2) & aspect(6.0)) & volume(max=20.0))"
    assert (report.n_in, report.n_out) == (5, 2)
    assert report.dropped == {"distance(1.2)": 1, "aspect(6.0)": 1, "volume(max=20.0)": 1}
    assert [d.label for d in report.drops] == [uuids[1], uuids[2], uuids[3]]
    assert "Å" in report.drops[0].detail


def test_filter_blames_or_and_not_as_a_whole() -> None:
    structures = _population()
    either = DistanceFilter(1.2) | VolumeFilter(maximum=4.0)
    report = StageReport()
    F.filter(structures, either & ~AspectFilter(1.5), report)
    assert report.dropped == {str(either): 1, "~aspect(1.5)": 3}


def test_filter_accepts_single_filters_plain_callables_and_generators() -> None:
    structures = _population()
    report = StageReport()
    kept = F.filter((s for s in structures), [has_even_atom_count, AspectFilter()], report)
    assert kept == []
    assert report.dropped == {"has_even_atom_count": 4, "aspect(6.0)": 1}
    assert F.filter(structures, AspectFilter()) == [s for s in structures if AspectFilter()(s)]
    assert F.filter(structures, []) == structures
    assert apply_filters is F.filter


def test_filter_labels_structures_without_uuid_by_formula_and_position() -> None:
    report = StageReport()
    F.filter([bulk("Cu"), molecule("H2O")], DistanceFilter(1.3), report)
    assert [d.label for d in report.drops] == ["Cu #0", "H2O #1"]


def test_filter_raises_type_error_naming_position_and_type_of_non_atoms() -> None:
    with pytest.raises(TypeError, match="structure 1 is a str"):
        F.filter([bulk("Cu"), "Cu"], AspectFilter())
    with pytest.raises(TypeError, match=r"builtins\.filter"):
        F.filter(AspectFilter(), [bulk("Cu")])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="filters must be"):
        F.filter([bulk("Cu")], 3)  # type: ignore[arg-type]


def test_builtin_filter_accepts_filters_as_predicates() -> None:
    structures = _population()
    check = DistanceFilter(1.2) & AspectFilter()
    assert list(builtins.filter(check, structures)) == F.filter(structures, check)
    assert list(builtins.filter(DistanceFilter(1.2), structures)) == [
        s for s in structures if DistanceFilter(1.2)(s)
    ]


def test_filter_checks_every_item_before_it_counts_anything() -> None:
    report = StageReport()
    with pytest.raises(TypeError, match="structure 2 is a NoneType"):
        F.filter([bulk("Cu"), bulk("Ag"), None], AspectFilter(), report)  # type: ignore[list-item]
    assert report.n_in == 0 and report.drops == []
