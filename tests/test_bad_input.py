"""Bad input gets a clear error before any work starts (issue 8).

Each test pins one line of the issue: the exception type, that the message names the bad value
*and* says what is valid (two patterns, both must match), and that nothing was computed (a spy
calculator, a spy perturbation, a spy filter or a spy on pyxtal records zero calls, or the error
comes from a constructor). Hypothesis sweeps the invalid ranges and checks the valid boundaries
pass, so the checks are not too strict.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pyiron_workflow as pwf
import pytest
from ase import Atoms
from ase.build import bulk, molecule
from ase.calculators.calculator import Calculator, all_changes
from ase.data import chemical_symbols
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from assyst_nodes import nodes
from assyst_nodes.calculators import ImportedCalculator, LennardJones, Morse
from assyst_nodes.lineage import update_uuid
from assyst_nodes.reports import StageReport
from assyst_nodes.stages.filter import AspectFilter, DistanceFilter
from assyst_nodes.stages.filter import filter as apply_filters
from assyst_nodes.stages.perturb import (
    CannotApply,
    ElementScaledRattle,
    RandomChoice,
    Rattle,
    Stretch,
    perturb,
)
from assyst_nodes.stages.relax import (
    MAX_PRESSURE,
    CellRelax,
    FullRelax,
    Relax,
    SymmetryRelax,
    VolumeRelax,
    relax,
)
from assyst_nodes.stages.sample import MAX_GROUP, TOLERANCE_PROTOTYPES, Formulas, pyxtal, sample
from assyst_nodes.validation import MIN_CELL_VOLUME

SWEEP = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
"""Hypothesis settings of the sweeps (fast: every example fails at the input check)."""

CELL_CLASSES = [CellRelax, VolumeRelax, SymmetryRelax, FullRelax]
PRESSURE_CLASSES = [VolumeRelax, SymmetryRelax, FullRelax]
CUAG = Formulas.range(("Cu", "Ag"), 0, 3)

TRIED: Counter[str] = Counter()
"""Inputs tried by this module, hypothesis examples included: ``refused`` and ``accepted``."""


@contextmanager
def refused(exception: type[BaseException], bad: str, valid: str) -> Iterator[Any]:
    """Expect ``exception`` whose message matches both ``bad`` (names the value) and ``valid``
    (says what would be valid); both are regular expressions."""
    TRIED["refused"] += 1
    with pytest.raises(exception, match=bad) as info:
        yield info
    info.match(valid)


def accepted(build: Callable[[], Any]) -> Any:
    """``build()``, counted as a valid input that must pass the checks."""
    TRIED["accepted"] += 1
    return build()


class SpyCalculator(Calculator):
    """Zero energy, forces and stress; counts its calculations."""

    implemented_properties = ("energy", "free_energy", "forces", "stress")

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def calculate(
        self, atoms: Atoms | None = None, properties: Any = None, system_changes: Any = all_changes
    ) -> None:
        super().calculate(atoms, properties, system_changes)
        self.calls += 1
        n = len(self.atoms)
        self.results = {
            "energy": 0.0,
            "free_energy": 0.0,
            "forces": np.zeros((n, 3)),
            "stress": np.zeros(6),
        }


class Spy:
    """A callable that records its calls and returns ``result`` (a perturbation or filter)."""

    def __init__(self, result: Any = True) -> None:
        self.calls = 0
        self.result = result
        self.__name__ = "spy"

    def __call__(self, structure: Atoms) -> Any:
        self.calls += 1
        return structure.copy() if self.result is None else self.result


@contextmanager
def pyxtal_spy() -> Iterator[list[Any]]:
    """Record every random crystal pyxtal is asked for (none is drawn)."""
    from pyxtal import pyxtal as PyXtal

    calls: list[Any] = []

    def from_random(self: Any, *args: Any, **kwargs: Any) -> None:
        calls.append(kwargs)
        raise RuntimeError("spy: no crystal drawn")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(PyXtal, "from_random", from_random)
        yield calls


def crystals(n: int = 3) -> list[Atoms]:
    """``n`` distinct fcc Cu cells with uuids."""
    return [update_uuid(bulk("Cu", "fcc", a=3.6 + 0.01 * i, cubic=True)) for i in range(n)]


def no_cell_structures() -> list[Atoms]:
    """Structures without a 3D cell: a molecule, a flat cell, a needle cell."""
    water = molecule("H2O")
    flat = Atoms(
        "Cu2",
        positions=[[0, 0, 0], [1.3, 1.3, 0]],
        cell=[[2.6, 0, 0], [0, 2.6, 0], [0, 0, 0]],
        pbc=[True, True, False],
    )
    needle = Atoms(
        "Cu2", positions=[[0, 0, 0], [0, 0, 1.3]], cell=[0, 0, 2.6], pbc=[False, False, True]
    )
    return [water, flat, needle]


def test_the_pyxtal_spy_sees_every_draw() -> None:
    """So that ``calls == []`` below means: pyxtal was never asked for a crystal."""
    report = StageReport()
    with pyxtal_spy() as calls:
        assert list(sample([{"Cu": 2}], [1, 2], rng=0, report=report)) == []
    assert len(calls) == 2 and report.dropped == {"pyxtal_failed": 2}


# --- unknown element symbol -------------------------------------------------------------------

NOT_SYMBOLS = st.text(min_size=1, max_size=4).filter(lambda s: s not in chemical_symbols[1:])


@SWEEP
@given(symbol=NOT_SYMBOLS)
def test_unknown_element_symbol_is_refused_everywhere_a_formula_enters(symbol: str) -> None:
    bad, valid = re.escape(repr(symbol)), "valid: the chemical symbols H to Og"
    with refused(ValueError, bad, valid):
        Formulas([{symbol: 1}])
    with refused(ValueError, bad, valid):
        Formulas.range(symbol, 1, 3)
    with refused(ValueError, bad, valid):
        Formulas.range(("Cu", symbol), 0, 2)
    with pyxtal_spy() as calls, refused(ValueError, bad, valid):
        list(sample([{"Cu": 1, symbol: 1}], [1]))
    assert calls == []


@pytest.mark.parametrize("symbol", ["X", "cu", "CU", "", 29, None])
def test_element_symbol_edge_cases_are_refused(symbol: Any) -> None:
    with refused(ValueError, re.escape(repr(symbol)), "valid: the chemical symbols"):
        Formulas([{symbol: 1}])


def test_every_chemical_symbol_is_accepted() -> None:
    for symbol in chemical_symbols[1:]:
        assert accepted(lambda s=symbol: Formulas([{s: 1}]))[0] == {symbol: 1}


def test_a_string_or_non_pair_where_compositions_go_is_a_type_error() -> None:
    with refused(TypeError, "'Cu'", r"list of compositions such as \[\{'Cu': 2"):
        Formulas("Cu")
    with refused(TypeError, "'CuAg'", r"composition such as \{'Cu': 2, 'Ag': 1\}"):
        Formulas(["CuAg"])
    with refused(TypeError, r"item \('Cu', 1, 2\)", r"pairs \[\('Cu', 2\)"):
        Formulas([[("Cu", 1, 2)]])
    with pyxtal_spy() as calls, refused(TypeError, "'Cu'", "list of compositions"):
        list(sample("Cu"))
    assert calls == []


# --- count < 0 ----------------------------------------------------------------------------------


@SWEEP
@given(count=st.integers(max_value=-1))
def test_negative_atom_count_is_refused(count: int) -> None:
    with refused(ValueError, f"got {count}", "must be an int >= 0"):
        Formulas([{"Cu": 1, "Ag": count}])
    with pyxtal_spy() as calls, refused(ValueError, f"got {count}", "must be an int >= 0"):
        list(sample([{"Cu": count}], [1]))
    assert calls == []


@SWEEP
@given(count=st.integers(0, 10**6))
def test_any_count_from_zero_up_is_accepted(count: int) -> None:
    assert accepted(lambda: Formulas([{"Cu": count}]))[0] == {"Cu": count}


# --- empty formulas -----------------------------------------------------------------------------


@pytest.mark.parametrize("formulas", [Formulas(), [], ()], ids=["Formulas()", "[]", "()"])
def test_empty_formulas_are_refused_before_drawing(formulas: Any) -> None:
    with (
        pyxtal_spy() as calls,
        refused(ValueError, "formulas is empty", "at least one composition"),
    ):
        sample(formulas, [1])
    assert calls == []


@SWEEP
@given(low=st.integers(1, 8), width=st.integers(0, 3))
def test_formulas_that_the_atom_window_empties_yield_nothing_with_a_warning(
    low: int, width: int
) -> None:
    # docs/stages/sample.md: such compositions are skipped (the reference yields nothing too)
    formulas = Formulas.range("Cu", low + width + 1, low + width + 4)  # all above max_atoms
    sizes = list(range(low + width + 1, low + width + 4))
    report = StageReport()
    with (
        pyxtal_spy() as calls,
        pytest.warns(UserWarning, match=f"min_atoms={low} to max_atoms={low + width}") as caught,
    ):
        out = list(sample(formulas, [1], min_atoms=low, max_atoms=low + width, report=report))
    assert out == [] and calls == []
    assert str(sizes) in str(caught[0].message)
    assert report.dropped == {"atom_window": 3} and report.n_out == 0
    zeros = Formulas([{"Cu": 0, "Ag": 0}])  # every count 0: nothing to draw
    with pytest.warns(UserWarning, match=r"they have \[0\] atoms.*widen the window"):
        assert list(sample(zeros, [1])) == []


# --- space groups and dim -----------------------------------------------------------------------


@st.composite
def bad_groups(draw: st.DrawFn) -> tuple[int, int]:
    dim = draw(st.sampled_from(sorted(MAX_GROUP)))
    group = draw(st.one_of(st.integers(max_value=0), st.integers(min_value=MAX_GROUP[dim] + 1)))
    return dim, group


@SWEEP
@given(case=bad_groups())
def test_group_outside_the_dimension_range_is_refused(case: tuple[int, int]) -> None:
    dim, group = case
    bad, valid = f"symmetry group {group} out of range", rf"dim={dim} allows 1\.\.{MAX_GROUP[dim]}"
    with pyxtal_spy() as calls:
        with refused(ValueError, bad, valid):
            sample([{"Cu": 2}], [1, group], dim=dim)
        with refused(ValueError, bad, valid):
            pyxtal(group, ["Cu"], [2], dim=dim)
    assert calls == []


@pytest.mark.parametrize(("dim", "group"), [(3, 0), (3, 231), (2, 81), (1, 76), (0, 57)])
def test_named_out_of_range_groups(dim: int, group: int) -> None:
    with refused(ValueError, f"group {group} out of range", f"allows 1..{MAX_GROUP[dim]}"):
        sample([{"Cu": 2}], [group], dim=dim)


@pytest.mark.parametrize("dim", sorted(MAX_GROUP))
def test_every_group_of_each_dimension_passes_the_checks(dim: int) -> None:
    with pyxtal_spy() as calls:
        accepted(lambda: sample([{"Cu": 2}], range(1, MAX_GROUP[dim] + 1), dim=dim))
        accepted(lambda: sample([{"Cu": 2}], None, dim=dim))
    assert calls == []  # checks only: the generator was not iterated


@pytest.mark.parametrize("group", [1.0, "225", None, True])
def test_a_group_that_is_not_an_int_is_a_type_error(group: Any) -> None:
    with refused(TypeError, re.escape(repr(group)), "must be an int"):
        sample([{"Cu": 2}], [group])


def test_spacegroups_that_are_not_a_collection_are_a_type_error() -> None:
    with refused(TypeError, "got 225", r"iterable of group numbers \(e\.g\. \[225\]"):
        sample([{"Cu": 2}], 225)  # type: ignore[arg-type]
    with refused(ValueError, "spacegroups is empty", "give group numbers or None"):
        sample([{"Cu": 2}], [])


@SWEEP
@given(
    dim=st.one_of(
        st.integers().filter(lambda d: d not in MAX_GROUP),
        st.just(3.0),
        st.just(True),
        st.just("3"),
    )
)
def test_dim_outside_0_to_3_is_refused(dim: Any) -> None:
    with (
        pyxtal_spy() as calls,
        refused(ValueError, f"got {re.escape(repr(dim))}", "one of 0, 1, 2, 3"),
    ):
        sample([{"Cu": 2}], [1], dim=dim)
    with refused(ValueError, f"got {re.escape(repr(dim))}", "one of 0, 1, 2, 3"):
        pyxtal(1, ["Cu"], [2], dim=dim)
    assert calls == []


# --- min_atoms > max_atoms ------------------------------------------------------------------------


@SWEEP
@given(high=st.integers(1, 50), gap=st.integers(1, 50))
def test_min_atoms_above_max_atoms_is_refused(high: int, gap: int) -> None:
    low = high + gap
    with (
        pyxtal_spy() as calls,
        refused(
            ValueError, f"min_atoms={low}, max_atoms={high}", "need 1 <= min_atoms <= max_atoms"
        ),
    ):
        sample(CUAG, [1], min_atoms=low, max_atoms=high)
    with refused(ValueError, rf"min_atoms \({low}\)", rf"must be <= max_atoms \({high}\)"):
        CUAG.trim(low, high)
    assert calls == []


@SWEEP
@given(low=st.integers(1, 2), extra=st.integers(0, 20))
def test_min_atoms_equal_or_below_max_atoms_is_accepted(low: int, extra: int) -> None:
    with pyxtal_spy():
        accepted(lambda: sample(CUAG, [1], min_atoms=low, max_atoms=low + extra))


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("min_atoms", "2"),
        ("min_atoms", 1.5),
        ("max_atoms", 2.5),
        ("max_structures", "3"),
        ("min_atoms", None),
    ],
)
def test_atom_counts_and_caps_of_the_wrong_type_are_type_errors(name: str, value: Any) -> None:
    with refused(TypeError, f"{name} must be an int", re.escape(f"got {value!r}")):
        sample(CUAG, [1], **{name: value})


# --- tolerance prototype and radii --------------------------------------------------------------


@SWEEP
@given(name=st.text(max_size=12).filter(lambda s: s not in TOLERANCE_PROTOTYPES))
def test_unknown_tolerance_prototype_is_refused(name: str) -> None:
    with (
        pyxtal_spy() as calls,
        refused(
            ValueError, f"unknown tolerance prototype {re.escape(repr(name))}", "valid: .'metallic'"
        ),
    ):
        sample([{"Cu": 2}], [1], tolerance=name)
    assert calls == []


@pytest.mark.parametrize("name", TOLERANCE_PROTOTYPES)
def test_every_tolerance_prototype_is_accepted(name: str) -> None:
    with pyxtal_spy():
        accepted(lambda: sample([{"Cu": 2}], [1], tolerance=name))


NEGATIVE = st.floats(max_value=-1e-300, allow_nan=False, allow_infinity=True)


@SWEEP
@given(radius=NEGATIVE)
def test_negative_radii_are_refused(radius: float) -> None:
    valid = r"must be finite and >= 0 \(Å\)"
    with refused(ValueError, f"got {re.escape(str(radius))}", valid):
        DistanceFilter(radius)
    with refused(ValueError, f"radius of Cu must be finite.*got {re.escape(str(radius))}", valid):
        DistanceFilter({"Ag": 1.0, "Cu": radius})
    with pyxtal_spy() as calls, refused(ValueError, f"got {re.escape(str(radius))}", valid):
        sample([{"Cu": 2}], [1], tolerance={"Cu": radius})
    assert calls == []


@SWEEP
@given(radius=st.floats(0, 1e6))
def test_radii_from_zero_up_are_accepted(radius: float) -> None:
    assert accepted(lambda: DistanceFilter({"Cu": radius})).radius("Cu") == radius


# --- sigma, strain, pressure ------------------------------------------------------------------


@SWEEP
@given(sigma=NEGATIVE)
def test_negative_sigma_is_refused(sigma: float) -> None:
    bad = f"got {re.escape(repr(sigma))}"
    with refused(ValueError, bad, r"sigma must be (finite \()?>= 0 Å"):
        Rattle(sigma)
    with refused(ValueError, bad, r"sigma must be (>= 0 \(relative\)|finite \(>= 0, relative\))"):
        ElementScaledRattle(sigma)


@pytest.mark.parametrize("sigma", [math.nan, "0.1", None])
def test_sigma_that_is_no_finite_number_is_refused(sigma: Any) -> None:
    exception = ValueError if isinstance(sigma, float) else TypeError
    with refused(exception, re.escape(repr(sigma)), "sigma must be (a number|finite)"):
        Rattle(sigma)


@SWEEP
@given(sigma=st.floats(0, 10))
def test_sigma_from_zero_is_accepted(sigma: float) -> None:
    assert accepted(lambda: Rattle(sigma)).sigma == sigma


STRAIN_OUTSIDE = st.one_of(
    st.floats(max_value=-1e-300, allow_nan=False, allow_infinity=False),
    st.floats(min_value=1.0, allow_infinity=False),
)


@SWEEP
@given(strain=STRAIN_OUTSIDE, which=st.sampled_from(["hydro", "shear"]))
def test_strain_outside_zero_to_one_is_refused(strain: float, which: str) -> None:
    kwargs = {"hydro": 0.0, "shear": 0.0, which: strain}
    with refused(ValueError, f"{which} must be in", re.escape(f"[0, 1) (strain), got {strain!r}")):
        Stretch(**kwargs)


@SWEEP
@given(hydro=st.floats(0.0, 0.99), shear=st.floats(0.0, 0.99))
def test_strains_that_could_collapse_the_cell_are_refused_the_others_accepted(
    hydro: float, shear: float
) -> None:
    if hydro + 2 * shear >= 1:
        with refused(ValueError, f"hydro={hydro}, shear={shear}", "hydro . 2 . shear must be < 1"):
            Stretch(hydro, shear, minimum_strain=0.0)
    else:
        accepted(lambda: Stretch(hydro, shear, minimum_strain=0.0))


@SWEEP
@given(
    pressure=st.one_of(
        st.floats(min_value=MAX_PRESSURE, exclude_min=True),
        st.floats(max_value=-MAX_PRESSURE, exclude_max=True),
        st.just(math.nan),
    ),
    cls=st.sampled_from(PRESSURE_CLASSES),
)
def test_pressure_outside_the_sane_range_is_refused(pressure: float, cls: type) -> None:
    with refused(ValueError, f"got {re.escape(repr(pressure))}", r"finite and within ±1000\.0 GPa"):
        cls(pressure_gpa=pressure)


@SWEEP
@given(pressure=st.floats(-MAX_PRESSURE, MAX_PRESSURE), cls=st.sampled_from(PRESSURE_CLASSES))
def test_pressure_within_the_sane_range_is_accepted(pressure: float, cls: type) -> None:
    assert accepted(lambda: cls(pressure_gpa=pressure)).pressure_gpa == pressure


@pytest.mark.parametrize("cls", PRESSURE_CLASSES)
@pytest.mark.parametrize("pressure", ["1", None, [1.0]])
def test_pressure_that_is_no_number_is_a_type_error(cls: type, pressure: Any) -> None:
    with refused(
        TypeError, re.escape(repr(pressure)), r"pressure_gpa must be a number within ±1000"
    ):
        cls(pressure_gpa=pressure)


@pytest.mark.parametrize("cls", PRESSURE_CLASSES)
def test_the_reference_pressure_keyword_in_ev_per_cubic_angstrom_is_refused(cls: type) -> None:
    # the reference package's pressure= is eV/Å^3 (ASE's unit); here it is pressure_gpa= in GPa
    with refused(TypeError, r"pressure=0\.5\)", r"write pressure_gpa=80\.108831 \(GPa\)"):
        cls(pressure=0.5)


def test_force_tolerance_and_potential_parameters_that_are_no_numbers_are_type_errors() -> None:
    with refused(TypeError, "got '0.01'", r"force_tolerance must be a number > 0 \(eV/Å\)"):
        Relax(force_tolerance="0.01")
    with refused(TypeError, "got 'deep'", "Morse.epsilon must be a number"):
        Morse(epsilon="deep")
    with refused(TypeError, "got '3'", "LennardJones.rc must be a number"):
        LennardJones(rc="3")
    with refused(ValueError, "got -1.0", "LennardJones.sigma must be > 0"):
        LennardJones(sigma=-1.0)


# --- chance and retries -------------------------------------------------------------------------


@SWEEP
@given(
    chance=st.one_of(
        st.floats(max_value=0.0, exclude_max=True, allow_infinity=True),
        st.floats(min_value=1.0, exclude_min=True, allow_infinity=False),
    )
)
def test_chance_outside_zero_to_one_is_refused(chance: float) -> None:
    with refused(
        ValueError, f"got {re.escape(repr(chance))}", r"chance must be (finite \()?in \[0, 1\]"
    ):
        RandomChoice(Rattle(0.1), Rattle(0.2), chance)


@SWEEP
@given(chance=st.floats(0.0, 1.0))
def test_chance_from_zero_to_one_is_accepted(chance: float) -> None:
    assert accepted(lambda: RandomChoice(Rattle(0.1), Rattle(0.2), chance)).chance == chance


@SWEEP
@given(retries=st.one_of(st.integers(max_value=0), st.just(1.0), st.just(True), st.just("3")))
def test_retries_below_one_is_refused_before_any_draw(retries: Any) -> None:
    spy = Spy(result=None)
    with refused(ValueError, f"got {re.escape(repr(retries))}", "retries must be an int >= 1"):
        perturb(crystals(2), spy, retries=retries)
    assert spy.calls == 0


def test_one_retry_is_accepted() -> None:
    spy = Spy(result=None)
    assert len(accepted(lambda: perturb(crystals(2), spy, retries=1))) == 2
    assert spy.calls == 2


# --- a non-Atoms item in a structure list ---------------------------------------------------------

NOT_ATOMS = st.one_of(
    st.none(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(max_size=8),
    st.booleans(),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.builds(object),
)


@SWEEP
@given(item=NOT_ATOMS, position=st.integers(0, 3))
def test_a_non_atoms_item_is_refused_by_every_stage_before_any_work(
    item: Any, position: int
) -> None:
    structures = crystals(3)
    structures.insert(position, item)
    bad, valid = f"structure {position} is a {type(item).__name__}", "expected ase.Atoms"
    calculator = SpyCalculator()
    with refused(TypeError, bad, valid):
        relax(structures, Relax(calculator=calculator))
    perturbation, predicate = Spy(result=None), Spy(result=True)
    with refused(TypeError, bad, valid):
        perturb(structures, perturbation)
    with refused(TypeError, bad, valid):
        apply_filters(structures, predicate)
    assert calculator.calls == perturbation.calls == predicate.calls == 0


@pytest.mark.parametrize(
    ("structures", "bad"),
    [
        ("abc", r"a str \('abc'\)"),
        (5, r"a int \(5\)"),
        ({"a": bulk("Cu")}, "a dict"),
        (None, r"a NoneType \(None\)"),
    ],
)
def test_something_that_is_no_list_of_structures_is_refused(structures: Any, bad: str) -> None:
    calculator = SpyCalculator()
    with refused(TypeError, bad, r"expected an iterable of ase\.Atoms \(e\.g\. a list\)"):
        relax(structures, Relax(calculator=calculator))
    with refused(TypeError, "got a single Atoms", "wrap it in a list"):
        relax(bulk("Cu"), Relax(calculator=calculator))
    assert calculator.calls == 0


# --- a structure with no cell or a zero-volume cell -----------------------------------------------


@pytest.mark.parametrize("cls", CELL_CLASSES)
@pytest.mark.parametrize("position", [0, 2])
def test_cell_relaxations_refuse_structures_without_a_cell(cls: type, position: int) -> None:
    for shapeless in no_cell_structures():
        structures = crystals(2)
        structures.insert(position, shapeless)
        calculator = SpyCalculator()
        with refused(
            ValueError,
            rf"structure {position} \({shapeless.get_chemical_formula()}.*has no cell \(volume",
            rf"{cls.step_name} changes the cell, which needs three cell vectors spanning a volume",
        ):
            relax(structures, cls(calculator=calculator))
        assert calculator.calls == 0


@st.composite
def degenerate_cells(draw: st.DrawFn) -> np.ndarray:
    """3x3 cells of rank < 3: one row is a combination of the other two (or zero)."""
    rows = draw(
        st.lists(st.lists(st.floats(-5, 5), min_size=3, max_size=3), min_size=2, max_size=2)
    )
    a, b = np.array(rows)
    s, t = draw(st.floats(-2, 2)), draw(st.floats(-2, 2))
    cell = np.array([a, b, s * a + t * b])
    order = draw(st.permutations([0, 1, 2]))
    return cell[list(order)]


@SWEEP
@given(cell=degenerate_cells(), cls=st.sampled_from(CELL_CLASSES))
def test_cell_relaxations_refuse_any_zero_volume_cell(cell: np.ndarray, cls: type) -> None:
    flat = Atoms("Cu2", positions=[[0, 0, 0], [1.0, 1.0, 1.0]], cell=cell, pbc=False)
    assume(abs(flat.cell.volume) < MIN_CELL_VOLUME)  # round-off could make a (tiny) cell
    calculator = SpyCalculator()
    with refused(ValueError, r"structure 0 \(Cu2.*has no cell", "needs three cell vectors"):
        relax([flat], cls(calculator=calculator))
    assert calculator.calls == 0


def test_position_relaxation_and_labelling_of_a_molecule_are_accepted() -> None:
    water = molecule("H2O")
    calculator = SpyCalculator()
    (relaxed,) = accepted(lambda: relax([water], Relax(calculator=calculator)))
    assert relaxed.get_potential_energy() == 0.0 and calculator.calls >= 1


@pytest.mark.parametrize("cls", [Relax, *CELL_CLASSES])
def test_every_relaxation_refuses_periodic_axes_without_cell_vectors(cls: type) -> None:
    periodic = Atoms("Cu2", positions=[[0, 0, 0], [2.0, 0, 0]], pbc=True)  # no cell at all
    calculator = SpyCalculator()
    with refused(
        ValueError,
        r"structure 1 \(Cu2\) is periodic along pbc=\[True, True, True\]",
        "give one independent, non-zero cell vector per periodic axis or set pbc=False",
    ):
        relax([*crystals(1), periodic], cls(calculator=calculator))
    assert calculator.calls == 0


def test_stretching_a_structure_without_cell_cannot_apply_and_is_reported() -> None:
    water = update_uuid(molecule("H2O"))
    with refused(CannotApply, r"cell volume 0 Å\^3", r"needs a 3D cell \(volume >= "):
        Stretch(0.1, 0.1)(water)
    report = StageReport()
    out = perturb([water, *crystals(1)], Stretch(0.1, 0.1), rng=0, report=report)
    assert len(out) == 1 and report.dropped == {"cannot_apply": 1}
    assert "needs a 3D cell" in report.drops[0].detail
    # rattling a molecule is meaningful and stays allowed
    assert len(accepted(lambda: perturb([water], Rattle(0.05), rng=0))) == 1


def test_filters_judge_structures_without_cell_instead_of_failing() -> None:
    water = molecule("H2O")
    assert accepted(lambda: apply_filters([water], DistanceFilter(0.3))) == [water]
    assert apply_filters([water], AspectFilter(6.0)) == []  # documented: no cell is rejected


# --- a calculator import path that does not import ----------------------------------------------

RELAXED: list[str] = []


class SpyRelax(Relax):
    """Records every structure it is asked to relax."""

    def relax(self, structure: Atoms) -> Atoms:
        RELAXED.append(structure.get_chemical_formula())
        return super().relax(structure)


@pytest.mark.parametrize(
    ("path", "bad", "valid"),
    [
        (
            "no_such_module_xyz.calculators:Fancy",
            "cannot import module 'no_such_module_xyz",
            "give 'module:Name' or 'module.Name' of an installed module",
        ),
        (
            "ase.calculators.emt:Nope",
            "module 'ase.calculators.emt' has no 'Nope'",
            "give 'module:Name' of a calculator class or factory it defines",
        ),
    ],
)
def test_a_calculator_path_that_does_not_import_is_refused_before_relaxing(
    path: str, bad: str, valid: str
) -> None:
    RELAXED.clear()
    settings = SpyRelax(calculator=ImportedCalculator(path))  # lazy: builds where it runs
    with refused(ImportError, re.escape(repr(path)) + ".*" + bad, valid):
        relax(crystals(2), settings)
    with refused(ImportError, bad, valid):
        relax(crystals(2), VolumeRelax(calculator=ImportedCalculator(path)))
    assert RELAXED == []


def test_a_calculator_path_without_a_module_is_refused() -> None:
    with refused(ValueError, "'EMT'", "must be 'module.Name' or 'module:Name'"):
        relax(crystals(1), Relax(calculator=ImportedCalculator("EMT")))
    with refused(ValueError, "got ''", "must be 'module.Name' or 'module:Name'"):
        ImportedCalculator("")


# --- a project folder that cannot be written ----------------------------------------------------


def test_a_project_folder_under_a_file_is_refused_before_any_job(tmp_path: Path) -> None:
    from assyst_nodes.project import ProjectRecorder, open_project

    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    below = blocker / "project"
    with refused(
        ValueError, re.escape(str(below)), "give a folder that can be created and written"
    ):
        open_project(below)
    with refused(ValueError, re.escape(str(blocker)), r"is not a folder; give a folder"):
        open_project(blocker)
    computed = []

    def compute() -> tuple[list[Atoms], StageReport]:
        computed.append(1)
        return [], StageReport()

    with refused(ValueError, re.escape(str(below)), "can be created and written"):
        ProjectRecorder(str(below)).record("sample", {"seed": 0}, [], compute)
    assert computed == []
    assert blocker.read_text() == "not a folder"


# --- a node input of the wrong type -------------------------------------------------------------


def test_a_wrongly_typed_constant_is_refused_when_the_node_joins_a_workflow() -> None:
    wf = pwf.Workflow("typed")
    with refused(
        TypeError,
        r"relax\.structures.*source \(<class 'str'>\)",
        r"not as-or-more-specific-than the target \(list\[ase\.atoms\.Atoms\]\)",
    ):
        wf.relax = pwf.node(nodes.relax, structures="not structures")
    with refused(
        TypeError, r"rattle\.sigma.*source \(<class 'str'>\)", r"target \(<class 'float'>\)"
    ):
        wf.rattle = pwf.node(nodes.Rattle, sigma="0.1")


def test_a_wrongly_typed_connection_is_reported_by_validate_and_refused_when_run() -> None:
    wf = pwf.Workflow("typed")
    wf.formulas = pwf.node(nodes.formulas_range, elements="Cu")
    wf.relax = pwf.node(nodes.relax)
    wf.connect(wf.formulas, wf.relax.inputs.structures)  # pwf 0.20 does not check here
    wf.create_input_for(wf.formulas.inputs.stop, label="stop")
    wf.create_output_from(wf.relax.outputs.structures, label="relaxed")
    report = wf.validate(do_ontology=False).types
    assert not report.valid
    assert "formulas.formulas->relax.structures" in report.text
    with refused(TypeError, r"structure 0 is a dict \(\{'Cu': 0\}\)", "expected ase.Atoms"):
        wf.run(stop=3)


def test_a_wrongly_typed_value_given_to_run_is_refused_by_the_stage_itself() -> None:
    # pwf.run(...) hands values over unchecked; the core functions name them
    with refused(TypeError, r"got a str \('CuAg'\)", "iterable of ase.Atoms"):
        pwf.run(nodes.relax, structures="CuAg")
    with refused(TypeError, r"got 'Cu'", "list of compositions"):
        pwf.run(nodes.sample, formulas="Cu")
    with refused(TypeError, r"got 'wide'", "sigma must be a number"):
        pwf.run(nodes.Rattle, sigma="wide")
    with refused(TypeError, r"got 'full'", r"settings must be a Relax"):
        pwf.run(nodes.relax, structures=crystals(1), settings="full")


def test_bad_stage_input_with_a_project_recorder_leaves_no_job(tmp_path: Path) -> None:
    from assyst_nodes.nodes import stages
    from assyst_nodes.project import ProjectRecorder, open_project

    recorder = ProjectRecorder(tmp_path / "proj", pipeline="bad input")
    before = len(open_project(tmp_path / "proj").job_table())
    with pytest.raises(ValueError, match=r"symmetry group 231 out of range: dim=3 allows 1\.\.230"):
        stages.sample(Formulas.range("Cu", 1, 3), [225, 231], max_atoms=2, recorder=recorder)
    with pytest.raises(ValueError, match="max_structures must be >= 0 or None, got -1"):
        stages.sample(Formulas.range("Cu", 1, 3), [225], max_structures=-1, recorder=recorder)
    for stage in (stages.relax, stages.label, stages.perturb, stages.filter_structures):
        args = (Rattle(0.1),) if stage is stages.perturb else ()
        with pytest.raises(TypeError, match="structure 1 is a str"):
            stage([bulk("Cu"), "Cu"], *args, recorder=recorder)
    assert len(open_project(tmp_path / "proj").job_table()) == before
