"""docs/migrating.md, row by row: code of the reference package (``assyst`` 1.0.0) copied
verbatim either gives the reference's result or stops with an error saying what to write.

Each test runs the "this package" column and checks that the "reference" column raises or gives
the reference's result. Golden numbers were measured with ``assyst==1.0.0`` and ase 3.29.0 in a
separate venv (``/work/refvenv/bin/python``, script: the snippet in each comment); the reference
package is never imported here.
"""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest
from ase import Atoms, units
from ase.build import bulk
from ase.calculators.calculator import Calculator, all_changes
from ase.calculators.emt import EMT as AseEMT
from ase.calculators.singlepoint import SinglePointCalculator
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from assyst_nodes.calculators import EMT, Morse, get_calculator
from assyst_nodes.lineage import LINEAGE, SEED, UUID, chain
from assyst_nodes.reports import StageReport
from assyst_nodes.stages.filter import (
    AspectFilter,
    EnergyFilter,
    ForceFilter,
    MissingResultError,
    VolumeFilter,
)
from assyst_nodes.stages.perturb import Rattle, Stretch, perturb
from assyst_nodes.stages.relax import (
    REFERENCE_OPTIMIZER,
    FullRelax,
    Relax,
    SymmetryRelax,
    VolumeRelax,
    relax,
)
from assyst_nodes.stages.sample import Formulas, sample

# --- 1. sample: no formula fits the atom window ---------------------------------------------


def test_sample_yields_nothing_when_no_formula_fits_the_window() -> None:
    # reference: list(sample(Formulas.range("Cu", 5, 7), [225], max_atoms=4)) == []
    report = StageReport()
    with pytest.warns(UserWarning, match=r"min_atoms=1 to max_atoms=4.*\[5, 6\] atoms"):
        out = list(sample(Formulas.range("Cu", 5, 7), [225], max_atoms=4, report=report))
    assert out == []
    assert report.dropped == {"atom_window": 2}


# --- 2. relax: a structure without uuid -----------------------------------------------------


def test_relaxing_a_structure_without_uuid_gives_a_result_whose_chain_resolves() -> None:
    # reference: Relax(calculator=EMT())(atoms) without uuid -> info["seed"] == info["uuid"],
    # no lineage
    plain = bulk("Cu", "fcc", a=3.7, cubic=True)
    [out] = relax([plain], Relax(calculator=EMT(), max_steps=5))
    assert UUID not in plain.info
    assert out.info[SEED] == out.info[UUID] and out.info[LINEAGE] == []
    assert chain(out, [out]) == [out]
    [again] = relax([plain], Relax(calculator=EMT(), max_steps=5))
    assert again.info[UUID] == out.info[UUID]  # still deterministic
    [perturbed] = perturb([plain], Rattle(0.05), rng=0)  # perturb does the same
    assert chain(perturbed, [perturbed]) == [perturbed]


# --- 3. exact bounds are kept -----------------------------------------------------------------

cells = arrays(
    np.float64,
    (3, 3),
    elements=st.floats(-6.0, 6.0, allow_nan=False, allow_subnormal=False),
).map(lambda m: m + np.eye(3) * 7.0)


@settings(max_examples=200, deadline=None)
@given(cell=cells, n=st.integers(1, 8))
def test_a_volume_bound_set_to_ases_value_keeps_the_structure(cell: np.ndarray, n: int) -> None:
    atoms = Atoms("Cu" * n, cell=cell, pbc=True)
    v = atoms.get_volume() / len(atoms)
    assert VolumeFilter.volume_per_atom(atoms) == v  # bit for bit ASE's
    assert VolumeFilter(minimum=v)(atoms) and VolumeFilter(maximum=v)(atoms)
    assert VolumeFilter(v, v)(atoms)
    assert not VolumeFilter(maximum=v * (1 - 1e-9))(atoms)  # the slack is round-off only


@settings(max_examples=200, deadline=None)
@given(cell=cells)
def test_an_aspect_bound_set_to_the_cells_ratio_keeps_it(cell: np.ndarray) -> None:
    atoms = Atoms(cell=cell, pbc=True)
    c = atoms.cell
    ratio = float(c.lengths().max() / (c.volume / c.areas()).min())
    heights = AspectFilter(ratio, measure="heights")
    assert heights.aspect_ratio(atoms) == ratio  # ASE's own geometry
    assert heights(atoms)
    lengths = sorted(c.lengths())
    assert AspectFilter(lengths[2] / lengths[0])(atoms)  # the reference's measure, exact too


def test_a_cubic_cells_computed_ratio_below_one_by_round_off_is_a_valid_bound() -> None:
    """Found by the test above in CI: a near-cubic cell's height ratio computed as
    0.9999999999999993, which the filter refused as a bound below 1."""
    bound = AspectFilter(0.9999999999999993, measure="heights")
    assert bound.maximum_aspect_ratio == 1.0
    assert bound(Atoms(cell=np.eye(3) * 7.0, pbc=True))
    with pytest.raises(ValueError, match=r"must be >= 1, got 0\.999"):
        AspectFilter(0.999)


def test_an_orthorhombic_bound_is_kept_though_ases_determinant_rounds() -> None:
    atoms = Atoms("Cu2", positions=[[0, 0, 0], [1, 1, 1]], cell=[2, 2, 5], pbc=True)
    assert atoms.get_volume() != 20.0  # np.linalg.det rounds
    assert VolumeFilter(10.0, 10.0)(atoms)


# --- 4. VolumeFilter(300) -----------------------------------------------------------------------


def test_a_single_positional_volume_bound_is_refused() -> None:
    cu = bulk("Cu", "fcc", a=3.6, cubic=True)  # 11.664 Å^3/atom
    # reference: VolumeFilter(10)(cu) is False (10 is the maximum), VolumeFilter(300)(cu) True
    with pytest.raises(TypeError, match=r"write VolumeFilter\(maximum=10\)"):
        VolumeFilter(10)
    with pytest.raises(TypeError, match=r"write VolumeFilter\(minimum=5\)"):
        VolumeFilter(minimum_volume_per_atom=5)
    assert not VolumeFilter(maximum=10)(cu) and VolumeFilter(maximum=300)(cu)
    assert VolumeFilter(5, 40)(cu)  # two positional bounds mean (min, max) in both


# --- 5. pressure ------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", [VolumeRelax, SymmetryRelax, FullRelax])
def test_the_reference_pressure_in_ev_per_cubic_angstrom_is_refused(cls: type[Relax]) -> None:
    with pytest.raises(TypeError, match=r"eV/Å\^3.*write pressure_gpa=8\.0108831 \(GPa\)"):
        cls(pressure=0.05)


def test_pressure_gpa_gives_the_references_volume() -> None:
    # reference: FullRelax(pressure=0.05, calculator=EMT())(bulk("Cu", "fcc", a=3.7,
    # cubic=True)) -> volume per atom 10.9652816268 Å^3 (converged); VolumeRelax the same
    start = bulk("Cu", "fcc", a=3.7, cubic=True)
    for cls in (FullRelax, VolumeRelax):
        settings = {"pressure_gpa": 0.05 / units.GPa, "calculator": EMT()}
        [same] = relax([start], cls(**settings, **REFERENCE_OPTIMIZER))
        assert same.get_volume() / len(same) == pytest.approx(10.9652816268, abs=1e-6)
        [out] = relax([start], cls(**settings))  # default optimiser: same minimum, other path
        assert out.info["relax_converged"]
        assert out.get_volume() / len(out) == pytest.approx(10.9652816268, abs=1e-3)


# --- 6. the structure's own calculator --------------------------------------------------------


def test_relax_without_calculator_uses_the_attached_one() -> None:
    # reference: atoms.calc = EMT(); VolumeRelax()(atoms) -> energy -0.0281459670 eV,
    # volume per atom 11.5654764131 Å^3 (a = 3.7 Å cubic Cu)
    start = bulk("Cu", "fcc", a=3.7, cubic=True)
    start.calc = AseEMT()
    [same] = relax([start], VolumeRelax(**REFERENCE_OPTIMIZER))
    assert same.get_potential_energy() == pytest.approx(-0.0281459670, abs=1e-6)
    assert same.get_volume() / len(same) == pytest.approx(11.5654764131, abs=1e-6)
    [out] = relax([start], VolumeRelax())  # default optimiser: same minimum, other path
    assert out.get_potential_energy() == pytest.approx(-0.0281459670, abs=1e-6)
    assert out.get_volume() / len(out) == pytest.approx(11.5654764131, abs=1e-3)
    morse = bulk("Cu", "fcc", a=3.7, cubic=True)
    morse.calc = get_calculator(Morse(epsilon=0.3, r0=2.6, rho0=5.0), cache=False)
    [other] = relax([morse], VolumeRelax())
    assert other.get_volume() != pytest.approx(out.get_volume(), rel=1e-3)  # really used


class _Unpicklable(Calculator):
    """EMT-like energies from a calculator that cannot be pickled (it holds a lambda)."""

    implemented_properties = ("energy", "forces")

    def __init__(self) -> None:
        super().__init__()
        self.inner = AseEMT()
        self.hook = lambda: None

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes) -> None:
        super().calculate(atoms, properties, system_changes)
        self.results = {
            "energy": self.inner.get_potential_energy(self.atoms),
            "forces": self.inner.get_forces(self.atoms),
        }


def test_an_attached_calculator_that_cannot_reach_the_workers_is_refused() -> None:
    start = bulk("Cu", "fcc", a=3.7, cubic=True)
    start.calc = _Unpicklable()
    with pytest.raises(Exception):  # noqa: B017  (any pickling error)
        pickle.dumps(start.calc)
    with pytest.raises(TypeError, match=r"cannot be pickled.*pass calculator="):
        relax([start], VolumeRelax(), workers=2)
    [out] = relax([start], Relax(max_steps=3))  # in this process it is used
    direct = bulk("Cu", "fcc", a=3.7, cubic=True)
    direct.calc = AseEMT()
    assert out.get_potential_energy() == pytest.approx(direct.get_potential_energy(), abs=1e-9)


def test_single_point_results_do_not_count_as_a_calculator() -> None:
    start = bulk("Cu", "fcc", a=3.7, cubic=True)
    start.calc = SinglePointCalculator(start, energy=1.0, forces=np.zeros((4, 3)))
    [out] = relax([start], VolumeRelax())  # EMT, the documented default
    assert out.get_potential_energy() == pytest.approx(-0.0281459670, abs=1e-6)


# --- 7. Morse defaults, filters without results, Rattle in place -------------------------------


def test_morse_defaults_are_the_references() -> None:
    # reference: Morse() == Morse(epsilon=1.0, r0=1.0, rho0=1.0); its energy on
    # bulk("Cu", "fcc", a=3.6, cubic=True) is -0.4817869695 eV
    assert (Morse().epsilon, Morse().r0, Morse().rho0) == (1.0, 1.0, 1.0)
    cu = bulk("Cu", "fcc", a=3.6, cubic=True)
    cu.calc = get_calculator(Morse(), cache=False)
    assert cu.get_potential_energy() == pytest.approx(-0.4817869695, abs=1e-9)


@pytest.mark.parametrize("check", [EnergyFilter(max_energy=0.0), ForceFilter(1.0)])
def test_calculator_filters_raise_without_results_as_the_reference(check: object) -> None:
    # reference: EnergyFilter(max_energy=0.0)(bulk("Cu")) raises ValueError
    with pytest.raises(ValueError, match="has no"):
        check(bulk("Cu"))  # type: ignore[operator]
    assert issubclass(MissingResultError, ValueError)
    with pytest.raises(TypeError, match=r"write if_missing='keep'"):
        EnergyFilter(max_energy=0.0, missing="ignore")  # type: ignore[call-arg]
    assert EnergyFilter(max_energy=0.0, if_missing="keep")(bulk("Cu"))


def test_rattle_called_on_a_structure_changes_it_in_place() -> None:
    # reference: Rattle(0.1, rng=1)(x) is x, and x's positions moved
    x = bulk("Cu", "fcc", a=3.6, cubic=True)
    before = x.positions.copy()
    y = Rattle(0.1, rng=1)(x)
    assert y is x and not np.allclose(x.positions, before)


# --- 8. seeded members of a composite -----------------------------------------------------------


def test_a_series_of_seeded_configs_is_reproducible_without_perturb_rng() -> None:
    cells = [bulk("Cu", "fcc", a=3.6, cubic=True), bulk("Cu", "fcc", a=3.7, cubic=True)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        first = perturb(cells, Rattle(0.1, rng=5) + Stretch(0.05, 0.05, rng=6))
        second = perturb(cells, Rattle(0.1, rng=5) + Stretch(0.05, 0.05, rng=6))
    assert [a.info[UUID] for a in first] == [b.info[UUID] for b in second]
    assert all(np.array_equal(a.positions, b.positions) for a, b in zip(first, second, strict=True))
    other = perturb(cells, Rattle(0.1, rng=5) + Stretch(0.05, 0.05, rng=7))
    assert not np.array_equal(first[0].cell.array, other[0].cell.array)
