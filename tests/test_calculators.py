"""Calculator configs: value semantics, building, clear errors."""

from __future__ import annotations

import dataclasses
import pickle

import pytest
from ase.build import bulk
from ase.calculators.emt import EMT as AseEMT
from ase.calculators.lj import LennardJones as AseLJ
from ase.calculators.morse import MorsePotential
from hypothesis import given
from hypothesis import strategies as st

from assyst_nodes.calculators import EMT, ImportedCalculator, LennardJones, Morse, get_calculator

positive = st.floats(0.1, 10.0, allow_nan=False)


@given(positive, positive)
def test_configs_are_hashable_equal_by_value_and_pickle(a: float, b: float) -> None:
    for config in (EMT(), Morse(epsilon=a, r0=b), LennardJones(sigma=a, epsilon=b)):
        copy = pickle.loads(pickle.dumps(config))
        assert copy == config and hash(copy) == hash(config)
    assert Morse(epsilon=a) != Morse(epsilon=a + 1)


@pytest.mark.parametrize(
    ("config", "cls"), [(EMT(), AseEMT), (Morse(), MorsePotential), (LennardJones(), AseLJ)]
)
def test_build_gives_the_ase_calculator(config, cls) -> None:
    built = config.build()
    assert type(built) is cls
    assert config.build() is not built
    atoms = bulk("Cu", "fcc", a=3.6) * (2, 1, 1)
    atoms.rattle(0.05, seed=1)
    atoms.calc = built
    reference = atoms.copy()
    reference.calc = cls(**dataclasses.asdict(config))  # ASE's class, the fields by name
    assert atoms.get_potential_energy() == pytest.approx(reference.get_potential_energy())
    assert atoms.get_forces() == pytest.approx(reference.get_forces())


def test_imported_calculator_builds_from_dotted_and_colon_paths() -> None:
    dotted = ImportedCalculator("ase.calculators.emt.EMT")
    assert isinstance(dotted.build(), AseEMT)
    lj = ImportedCalculator("ase.calculators.lj:LennardJones", {"sigma": 2.0, "epsilon": 0.5})
    built = lj.build()
    assert isinstance(built, AseLJ)
    assert built.parameters["sigma"] == 2.0 and built.parameters["epsilon"] == 0.5
    assert "sigma=2.0" in str(lj)


def test_imported_calculator_freezes_nested_kwargs_and_thaws_them_on_build() -> None:
    config = ImportedCalculator("ase.calculators.lj:LennardJones", {"x": {"b": [1, 2], "a": 1}})
    assert hash(config) == hash(ImportedCalculator(config.path, {"x": {"a": 1, "b": [1, 2]}}))
    assert config.keyword_arguments == {"x": {"a": 1, "b": (1, 2)}}
    assert pickle.loads(pickle.dumps(config)) == config


@pytest.mark.parametrize(
    ("path", "error", "message"),
    [
        ("no_such_package.calc:Calc", ImportError, "no_such_package"),
        ("ase.calculators.emt:Nope", ImportError, "has no 'Nope'"),
        ("ase.calculators.emt:__doc__", TypeError, "not a callable"),
        ("EMT", ValueError, "'module.Name' or 'module:Name'"),
    ],
)
def test_imported_calculator_check_names_the_bad_path(path, error, message) -> None:
    with pytest.raises(error, match=message):
        ImportedCalculator(path).check()


def test_imported_calculator_that_builds_no_calculator_is_refused() -> None:
    with pytest.raises(TypeError, match="not an ASE calculator"):
        ImportedCalculator("collections:OrderedDict").build()


@pytest.mark.parametrize(
    ("factory", "message"),
    [
        (lambda: Morse(epsilon=-1.0), "epsilon"),
        (lambda: Morse(rcut1=3.0, rcut2=2.0), "rcut1 < rcut2"),
        (lambda: LennardJones(sigma=0.0), "sigma"),
        (lambda: LennardJones(rc=-1.0), "rc"),
        (lambda: ImportedCalculator(""), "module"),
    ],
)
def test_invalid_parameters_are_named(factory, message) -> None:
    with pytest.raises(ValueError, match=message):
        factory()


def test_get_calculator_caches_per_config_and_passes_live_calculators() -> None:
    assert get_calculator(Morse(r0=2.0)) is get_calculator(Morse(r0=2.0))
    assert get_calculator(Morse(r0=2.0), cache=False) is not get_calculator(Morse(r0=2.0))
    live = AseEMT()
    assert get_calculator(live) is live
    with pytest.raises(TypeError, match="CalculatorConfig"):
        get_calculator("emt")  # type: ignore[arg-type]
