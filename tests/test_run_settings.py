"""Run settings: file round trips, the configs they build, and clear errors for bad values."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assyst_nodes.calculators import EMT, ImportedCalculator, LennardJones
from assyst_nodes.cli.settings import (
    RUN_KEYS,
    RunSettings,
    default_radii,
    format_spacegroups,
    parse_spacegroups,
    read_settings_file,
)
from assyst_nodes.pipeline import DEFAULT_FILTER, DEFAULT_PERTURBATIONS
from assyst_nodes.stages.filter import AspectFilter, DistanceFilter
from assyst_nodes.stages.relax import CellRelax, FullRelax, Relax, SymmetryRelax, VolumeRelax

finite = st.floats(min_value=0.001, max_value=50.0, allow_nan=False)
strain = st.just(0.0) | st.floats(min_value=0.001, max_value=0.3)  # hydro + 2 * shear < 1


def _run_settings(relax_pressure: tuple[str, float], **values: Any) -> RunSettings:
    """RunSettings with a second relaxation and a pressure (GPa) it takes."""
    relax, pressure = relax_pressure
    return RunSettings(relax=relax, pressure=pressure, **values)


settings_strategy = st.builds(
    _run_settings,
    elements=st.lists(st.sampled_from(["Cu", "Ag", "Fe", "Ni", "Al"]), min_size=1, max_size=3,
                      unique=True).map(tuple),
    min_atoms=st.integers(1, 3),
    max_atoms=st.integers(3, 12),
    spacegroups=st.none() | st.lists(st.integers(1, 230), min_size=1, max_size=20, unique=True)
    .map(lambda groups: tuple(sorted(groups))),
    max_structures=st.none() | st.integers(1, 1000),
    seed=st.integers(0, 2**63 - 1),
    workers=st.integers(1, 8),
    calculator=st.sampled_from(["emt", "lj", "morse", "ase.calculators.emt:EMT"]),
    label=st.none() | st.sampled_from(["emt", "lj"]),
    # cell and positions relax at no pressure, so a non-zero one is refused with them
    relax_pressure=st.tuples(
        st.sampled_from(["full", "symmetry"]), st.floats(-5.0, 50.0, allow_nan=False)
    ) | st.tuples(st.sampled_from(["cell", "positions"]), st.just(0.0)),
    fmax=finite,
    max_steps=st.integers(1, 1000),
    time_limit=st.none() | finite,
    sample_time_limit=st.none() | finite,
    rattle=st.floats(min_value=0.001, max_value=1.0),
    strain=st.tuples(strain, strain),
    large_strain=st.tuples(strain, strain),
    supercells=st.booleans(),
    retries=st.integers(1, 50),
    radii=st.none() | finite | st.fixed_dictionaries(  # every element that may be drawn
        {symbol: finite for symbol in ["Cu", "Ag", "Fe", "Ni", "Al"]}
    ),
    max_aspect=st.floats(1.0, 20.0),
    no_project=st.booleans(),
    output=st.none() | st.sampled_from(["out", "runs/a b"]),
    figures=st.booleans(),
    progress=st.none() | st.booleans(),
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(original=settings_strategy, suffix=st.sampled_from([".toml", ".yaml", ".yml"]))
def test_settings_written_to_a_file_read_back_equal(
    original: RunSettings, suffix: str, tmp_path: Path
) -> None:
    path = original.write(tmp_path / f"run{suffix}")
    again = RunSettings.from_file(path)
    expected = original if original.radii is not None else RunSettings(
        **{**original.__dict__, "radii": original.radii_table()}
    )
    assert again == expected
    assert again.volume_relax() == original.volume_relax()
    assert again.perturbations() == original.perturbations()


@given(st.lists(st.integers(1, 230), min_size=1, max_size=40, unique=True).map(sorted))
def test_format_and_parse_spacegroups_are_inverse(groups: list[int]) -> None:
    assert parse_spacegroups(format_spacegroups(groups)) == groups


def test_default_settings_build_the_embedded_example() -> None:
    run = RunSettings()
    assert tuple(run.perturbations()) == DEFAULT_PERTURBATIONS
    assert run.filters() == DEFAULT_FILTER
    assert run.volume_relax() == VolumeRelax(calculator=EMT())
    assert run.full_relax() == FullRelax(calculator=EMT())
    assert set(RUN_KEYS) >= {"elements", "calculator", "radii", "time_limit", "output"}


def test_default_radii_follow_covalent_radii_beyond_cu_and_ag() -> None:
    radii = default_radii(["Cu", "Ag", "Fe", "Al"])
    assert radii["Cu"] == 0.9 and radii["Ag"] == 1.0
    assert radii["Fe"] == pytest.approx(0.7 * 1.32, abs=0.006)  # ASE covalent radius of Fe
    assert all(type(value) is float for value in radii.values())
    with pytest.raises(ValueError, match="'Qq' is not a chemical symbol"):
        default_radii(["Qq"])


@pytest.mark.parametrize(
    ("relax", "kind"),
    [("full", FullRelax), ("symmetry", SymmetryRelax), ("cell", CellRelax), ("positions", Relax)],
)
def test_the_second_relaxation_is_chosen_by_name(relax: str, kind: type[Relax]) -> None:
    pressure = 2.0 if relax in ("full", "symmetry") else 0.0  # cell, positions: no pressure
    run = RunSettings(relax=relax, pressure=pressure, fmax=0.01, max_steps=7)
    built = run.full_relax()
    assert type(built) is kind
    assert built.max_steps == 7 and built.force_tolerance == 0.01
    assert getattr(built, "pressure_gpa", pressure) == pressure
    assert run.volume_relax() == VolumeRelax(
        pressure_gpa=pressure, max_steps=7, force_tolerance=0.01, calculator=EMT()
    )


@pytest.mark.parametrize("relax", ["cell", "positions"])
def test_a_pressure_the_second_relaxation_would_drop_is_refused(relax: str) -> None:
    with pytest.raises(ValueError, match=f"1.5 GPa would be dropped by relax '{relax}'"):
        RunSettings(relax=relax, pressure=1.5)
    assert RunSettings(relax=relax, pressure=0.0).full_relax().step_name != "full_relax"


def test_calculators_by_name_and_by_import_path() -> None:
    assert RunSettings(calculator="LJ", calculator_kwargs={"sigma": 2.0}).calculator_config() == (
        LennardJones(sigma=2.0)
    )
    imported = RunSettings(
        calculator="ase.calculators.lj:LennardJones", calculator_kwargs={"sigma": 2.0}
    ).calculator_config()
    assert imported == ImportedCalculator("ase.calculators.lj:LennardJones", {"sigma": 2.0})


def test_labels_from_a_settings_file_with_their_own_kwargs_and_executor(tmp_path: Path) -> None:
    path = tmp_path / "run.toml"
    path.write_text(
        'label = "lj"\n[label_kwargs]\nsigma = 2.3\n'
        '[executors.label]\nkind = "local"\nworkers = 3\n'
    )
    run = RunSettings.from_file(path)
    assert run.label_config() == LennardJones(sigma=2.3)
    assert run.calculator_config() == EMT()  # the relaxations keep their own calculator
    assert run.executor_for("label").workers == 3 and run.executor_for("relax") is None
    assert RunSettings().label_config() is None
    with pytest.raises(ValueError, match=r"label 'lj': bad label_kwargs"):
        RunSettings(label="lj", label_kwargs={"sigmaa": 1.0}).check()
    with pytest.raises(ValueError, match=r"label 'dft' is neither a built-in \(emt, .*gpaw\)"):
        RunSettings(label="dft").check()


def test_radii_and_aspect_make_the_filter() -> None:
    run = RunSettings(radii={"Cu": 1.1}, max_aspect=4.0, elements=("Cu",))
    assert run.filters() == DistanceFilter({"Cu": 1.1}) & AspectFilter(4.0, measure="heights")
    assert RunSettings(radii=0.8).distance_filter() == DistanceFilter(0.8)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"elements": ("Cu", "Qq")}, "Qq"),
        ({"relax": "sideways"}, "relax must be one of"),
        ({"strain": (0.1,)}, "strain must be two numbers"),
        ({"time_limit": 0.0}, "time_limit must be seconds > 0"),
        ({"time_limit": float("inf")}, "time_limit must be seconds > 0"),
        ({"sample_time_limit": -2.0}, "sample_time_limit must be seconds > 0 or None, got -2.0"),
        ({"retries": 0}, "retries must be >= 1, got 0"),
        ({"max_steps": 0}, "max_steps must be >= 1, got 0"),
        ({"max_structures": "lots"}, "max_structures must be a number or 'none'"),
        ({"calculator": ""}, "calculator must be one of"),
        ({"spacegroups": "1-x"}, "space groups must look like"),
        ({"spacegroups": "229-231"}, "231"),
        ({"max_structures": -1}, "max_structures must be >= 0 or None, got -1"),
        ({"min_atoms": 5, "max_atoms": 2}, "need 1 <= min_atoms <= max_atoms"),
        ({"large_strain": (0.0, 1e-9)}, "below minimum_strain"),
        ({"rattle": -0.1}, "sigma must be >= 0"),
        ({"radii": {"Cu": -1.0}}, "radius of Cu must be finite and >= 0"),
    ],
)
def test_bad_settings_name_the_value_and_what_is_valid(values: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RunSettings(**values)


@pytest.mark.parametrize(
    ("calculator", "error", "message"),
    [
        ("no_such_package.calculators:Calc", ImportError, "cannot import module"),
        ("ase.calculators.emt:NoSuchName", ImportError, "has no 'NoSuchName'"),
        ("quantum-magic", ValueError, "neither a built-in"),
    ],
)
def test_a_calculator_that_cannot_be_built_fails_the_check(
    calculator: str, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        RunSettings(calculator=calculator).check()


def test_settings_files_with_unknown_keys_or_formats_are_refused(tmp_path: Path) -> None:
    (tmp_path / "a.toml").write_text("max_atomz = 3\n")
    with pytest.raises(ValueError, match=r"unknown keys \['max_atomz'\]; valid: .*max_atoms"):
        read_settings_file(tmp_path / "a.toml")
    (tmp_path / "a.json").write_text("{}")
    with pytest.raises(ValueError, match=r"must end in \.toml, \.yaml or \.yml"):
        read_settings_file(tmp_path / "a.json")
    (tmp_path / "b.toml").write_text("max_atoms = \n")
    with pytest.raises(ValueError, match="is not valid TOML"):
        read_settings_file(tmp_path / "b.toml")
    (tmp_path / "empty.yaml").write_text("")
    assert read_settings_file(tmp_path / "empty.yaml") == {}
