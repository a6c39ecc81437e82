"""The canonical run is defined once: the macro, :func:`run_pipeline` and ``assyst-nodes run``
share its stages, order and defaults, and give a calculator to the relaxations the same way."""

from __future__ import annotations

import dataclasses
import inspect
from pathlib import Path

import numpy as np
import pyiron_workflow as pwf
import pytest
from ase.io import read

from assyst_nodes import defaults, nodes
from assyst_nodes.calculators import EMT, Morse, get_calculator
from assyst_nodes.cli import build_parser, main
from assyst_nodes.cli.settings import RunSettings
from assyst_nodes.lineage import STEP, UUID
from assyst_nodes.pipeline import combine, run_pipeline
from assyst_nodes.reports import StageReport
from assyst_nodes.stages.filter import apply_filters
from assyst_nodes.stages.perturb import perturb
from assyst_nodes.stages.relax import FullRelax, VolumeRelax, relax, with_calculator
from assyst_nodes.stages.sample import Formulas, sample

MORSE = Morse(epsilon=0.3, r0=2.6, rho0=5.0)
SMALL = {"elements": ("Cu",), "max_atoms": 2, "spacegroups": [221, 225, 229], "max_structures": 2}


def _defaults_of(function) -> dict:
    return {
        name: parameter.default
        for name, parameter in inspect.signature(function).parameters.items()
        if parameter.default is not inspect.Parameter.empty
    }


def test_the_macro_the_function_and_the_cli_take_the_defaults_of_one_module() -> None:
    expected = {
        "elements": defaults.ELEMENTS,
        "min_atoms": defaults.MIN_ATOMS,
        "max_atoms": defaults.MAX_ATOMS,
        "max_structures": defaults.MAX_STRUCTURES,
        "volume_relax": defaults.VOLUME_RELAX,
        "full_relax": defaults.FULL_RELAX,
        "max_aspect": defaults.MAX_ASPECT,
        "retries": defaults.RETRIES,
        "workers": defaults.WORKERS,
        "calculator": None,
    }
    macro, function = _defaults_of(nodes.assyst), _defaults_of(run_pipeline)
    for name, value in expected.items():
        assert macro[name] == value, name
        assert function[name] == value, name
    assert macro["seed"] == function["rng"] == defaults.SEED
    assert dict(macro["radii"]) == dict(function["radii"]) == dict(defaults.RADII)
    assert macro["perturbations"] is None  # None: defaults.PERTURBATIONS
    assert tuple(function["perturbations"]) == defaults.PERTURBATIONS

    settings = RunSettings()
    assert settings.elements == defaults.ELEMENTS
    assert (settings.min_atoms, settings.max_atoms) == (defaults.MIN_ATOMS, defaults.MAX_ATOMS)
    assert settings.max_structures == defaults.MAX_STRUCTURES
    assert (settings.retries, settings.seed, settings.workers) == (
        defaults.RETRIES, defaults.SEED, defaults.WORKERS,
    )
    assert settings.calculator_config() == defaults.CALCULATOR
    assert settings.volume_relax() == dataclasses.replace(
        defaults.VOLUME_RELAX, calculator=defaults.CALCULATOR
    )
    assert settings.full_relax() == dataclasses.replace(
        defaults.FULL_RELAX, calculator=defaults.CALCULATOR
    )
    assert tuple(settings.perturbations()) == defaults.PERTURBATIONS
    assert settings.filters() == defaults.FILTER


def test_help_shows_the_defaults_of_the_defaults_module() -> None:
    run = build_parser()._subparsers._group_actions[0].choices["run"]
    helps = {action.dest: action.help for action in run._actions}
    shown = {
        "max_structures": defaults.MAX_STRUCTURES,
        "max_atoms": defaults.MAX_ATOMS,
        "min_atoms": defaults.MIN_ATOMS,
        "retries": defaults.RETRIES,
        "max_aspect": defaults.MAX_ASPECT,
        "rattle": defaults.RATTLE,
        "fmax": defaults.VOLUME_RELAX.force_tolerance,
        "max_steps": defaults.VOLUME_RELAX.max_steps,
        "seed": defaults.SEED,
    }
    for dest, value in shown.items():
        assert helps[dest].endswith(f"({value})"), (dest, helps[dest])
    assert helps["strain"].endswith(f"({' '.join(map(str, defaults.STRAIN))})")
    assert helps["elements"].endswith(f"({' '.join(defaults.ELEMENTS)})")


def test_with_calculator_keeps_the_settings_own_and_refuses_two_different_ones() -> None:
    own = VolumeRelax(calculator=MORSE)
    assert with_calculator(own, None) is own
    assert with_calculator(own, MORSE) is own  # the same one given both ways is no conflict
    assert with_calculator(VolumeRelax(), MORSE).calculator == MORSE
    assert with_calculator(VolumeRelax(), None).calculator is None
    assert with_calculator(VolumeRelax(), None, default=EMT()).calculator == EMT()
    with pytest.raises(ValueError, match=r"Morse\(.*EMT\(\)"):
        with_calculator(own, EMT())


def _relaxed_with(structures, config) -> bool:
    """Whether every relaxed structure's stored energy (eV) is the one ``config`` gives."""
    calc = get_calculator(config)
    for atoms in structures:
        copy = atoms.copy()
        copy.calc = calc
        if not np.isclose(copy.get_potential_energy(), atoms.get_potential_energy(), atol=1e-8):
            return False
    return bool(structures)


def test_the_macro_relaxes_with_the_settings_own_calculator_when_given_none() -> None:
    out = pwf.run(
        nodes.assyst,
        **SMALL,
        volume_relax=VolumeRelax(max_steps=5, calculator=MORSE),
        full_relax=FullRelax(max_steps=5, calculator=MORSE),
    ).outputs
    assert _relaxed_with(out.volume_relaxed, MORSE)
    assert _relaxed_with(out.full_relaxed, MORSE)
    assert not _relaxed_with(out.full_relaxed, EMT())


def test_the_macro_refuses_two_different_calculators_naming_both() -> None:
    with pytest.raises(Exception) as caught:
        pwf.run(
            nodes.assyst, **SMALL, calculator=EMT(),
            volume_relax=VolumeRelax(max_steps=5, calculator=MORSE),
        )
    text = "".join(str(e) for e in _chain(caught.value))
    assert "Morse(" in text and "EMT()" in text


def _chain(error: BaseException):
    while error is not None:
        yield error
        error = error.__cause__ or error.__context__


def test_run_pipeline_keeps_the_settings_calculator_and_refuses_two() -> None:
    result = run_pipeline(
        **SMALL,
        volume_relax=VolumeRelax(max_steps=5, calculator=MORSE),
        full_relax=FullRelax(max_steps=5),
        calculator=None,
    )
    assert _relaxed_with(result.stages["volume_relaxed"], MORSE)
    assert _relaxed_with(result.stages["full_relaxed"], defaults.CALCULATOR)
    with pytest.raises(ValueError, match="two calculators"):
        run_pipeline(**SMALL, volume_relax=VolumeRelax(calculator=MORSE), calculator=EMT())


def test_the_cli_relaxes_with_the_calculator_it_names(tmp_path: Path) -> None:
    code = main([
        "run", "--elements", "Cu", "--max-atoms", "2", "--spacegroups", "221,225,229",
        "--max-structures", "2", "--max-steps", "5", "--no-figures", "--no-project",
        "--calculator", "morse", "--calculator-kwargs",
        '{"epsilon": 0.3, "r0": 2.6, "rho0": 5.0}', "--output", str(tmp_path),
    ])
    assert code == 0
    found = read(tmp_path / "training_set.extxyz", ":")
    relaxed = [a for a in found if a.info[STEP] in {"volume_relax", "full_relax"}]
    assert _relaxed_with(relaxed, MORSE)


def test_the_run_is_the_chain_of_the_core_stage_functions_bit_for_bit() -> None:
    """An independent composition of the core functions gives what the canonical run gives."""
    volume, full = VolumeRelax(max_steps=10), FullRelax(max_steps=10)
    result = run_pipeline(**SMALL, volume_relax=volume, full_relax=full, rng=7)

    tolerance = defaults.FILTER.left  # the DistanceFilter of distance & aspect
    sampled = list(sample(
        Formulas.range(("Cu",), 0, 3), [221, 225, 229], min_atoms=1, max_atoms=2,
        max_structures=2, tolerance=tolerance, shuffle=True, rng=7,
    ))
    volume_relaxed = relax(sampled, dataclasses.replace(volume, calculator=EMT()))
    full_relaxed = relax(volume_relaxed, dataclasses.replace(full, calculator=EMT()))
    perturbed = perturb(
        combine(volume_relaxed, full_relaxed), list(defaults.PERTURBATIONS),
        filters=defaults.FILTER, retries=defaults.RETRIES, rng=7,
    )
    combined = combine(sampled, volume_relaxed, full_relaxed, perturbed)
    final = apply_filters(combined, defaults.FILTER, report=StageReport())

    def rows(structures):
        return [
            (a.info[UUID], a.info[STEP], a.positions.tobytes(), a.cell.array.tobytes())
            for a in structures
        ]

    assert rows(result.structures) == rows(final)
    assert rows(result.stages["perturbed"]) == rows(perturbed)
    assert [r.stage for r in result.reports] == [
        "sample", "volume_relax", "full_relax", "perturb", str(defaults.FILTER),
    ]


def test_the_macro_page_states_the_defaults_of_the_signature() -> None:
    """Each single-input row of the macro's table in docs/nodes.md whose default is a Python
    literal gives the signature's default."""
    import ast
    import re

    page = (Path(__file__).resolve().parents[1] / "docs" / "nodes.md").read_text()
    signature = _defaults_of(nodes.assyst)
    checked = 0
    for name, default in re.findall(r"^\| `(\w+)` \| `([^`]*)` \|", page, flags=re.M):
        if name not in signature:
            continue
        try:
            value = ast.literal_eval(default)
        except (ValueError, SyntaxError):
            continue  # a config call such as VolumeRelax(): compared in the test above
        assert signature[name] == value, (name, default, signature[name])
        checked += 1
    assert checked >= 10
