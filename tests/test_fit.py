"""The fit stage with the linear ACE fit (extra ``ace``), and fitted potentials as calculators.

The linear fit is checked against independent computations: its potential, evaluated by
pyace's own ``PyACECalculator``, predicts exactly the least-squares predictions; labels made by
an ACE potential of known coefficients are fitted back to rounding; the weights are pacemaker's
uniform policy times ours. A fitted potential relaxes like any calculator, in a second run of
the pipeline. Without python-ace these tests skip with the reason (fail under ``CI=true``).
"""

from __future__ import annotations

import importlib.util
import pickle
import warnings

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from ase.calculators.emt import EMT as AseEMT
from ase.calculators.singlepoint import SinglePointCalculator
from services import _missing

from assyst_nodes.calculators import EMT, get_calculator
from assyst_nodes.calculators.fitted import ACEPotential, MACEPotential, file_digest
from assyst_nodes.pipeline import run_pipeline
from assyst_nodes.stages.fit import (
    MACE,
    LinearACE,
    PacemakerACE,
    ace_weights,
    fit,
    potential_errors,
    training_data,
)
from assyst_nodes.stages.fit.ace import design_matrix, ridge_solve
from assyst_nodes.stages.isolated import CONFIG_TYPE, IsolatedAtoms, isolated_atoms
from assyst_nodes.stages.relax import FullRelax, relax
from assyst_nodes.stages.split import Split, split
from assyst_nodes.stages.weights import Weights

SMALL = LinearACE(functions=30, radial=(8, 2), angular=(0, 1), cutoff=5.0, ridge=0.0)


@pytest.fixture(autouse=True)
def _needs_pyace() -> None:
    if importlib.util.find_spec("pyace") is None:
        _missing('python-ace is not installed: pip install -e ".[ace]"')


def _labelled(atoms: Atoms, calculator, origin: str = "perturbed") -> Atoms:
    copy = atoms.copy()
    copy.calc = calculator
    results = {
        "energy": copy.get_potential_energy(),
        "free_energy": copy.get_potential_energy(),
        "forces": copy.get_forces(),
        "stress": copy.get_stress(),
    }
    copy.calc = SinglePointCalculator(copy, **results)
    copy.info[CONFIG_TYPE] = origin
    return copy


def small_set(n: int = 24, seed: int = 0, calculator=None) -> list[Atoms]:
    """Rattled and strained Cu, Ag and CuAg cells labelled with EMT, and the isolated atoms."""
    calculator = calculator or AseEMT()
    rng = np.random.default_rng(seed)
    cells = [bulk("Cu", "fcc", a=3.6, cubic=True), bulk("Ag", "fcc", a=4.1, cubic=True)]
    mixed = bulk("Cu", "fcc", a=3.85, cubic=True)
    mixed.symbols[[1, 2]] = "Ag"
    cells.append(mixed)
    out = []
    for i in range(n):
        atoms = cells[i % 3].copy()
        atoms.set_cell(atoms.cell * (1 + rng.uniform(-0.04, 0.04)), scale_atoms=True)
        atoms.rattle(0.05, seed=int(rng.integers(1 << 30)))
        atoms.info["family"] = f"f{i % 6}"
        out.append(_labelled(atoms, calculator))
    for atom in isolated_atoms(("Cu", "Ag"), IsolatedAtoms()):
        out.append(_labelled(atom, calculator, origin=atom.info[CONFIG_TYPE]))
    return out


def test_linear_ace_potential_predicts_exactly_its_least_squares_solution(tmp_path) -> None:
    structures = small_set()
    result = fit(structures, SMALL, tmp_path)
    data = training_data(structures)
    basis = SMALL.basis(data.elements())
    design_e, design_f = design_matrix(basis, data.structures)
    w_e, w_f = ace_weights(data, "uniform")
    rows_e = np.sqrt(0.7 * w_e)
    rows_f = np.sqrt(0.3 * np.repeat(np.concatenate(w_f), 3))
    coefficients = ridge_solve(
        np.vstack([design_e * rows_e[:, None], design_f * rows_f[:, None]]),
        np.concatenate(
            [
                data.corrected_energies("free_energy") / [len(a) for a in data.structures] * rows_e,
                np.concatenate([a.get_forces().ravel() for a in data.structures]) * rows_f,
            ]
        ),
        0.0,
    )
    calculator = result.potential.build()
    offset = 0
    for i, atoms in enumerate(data.structures):
        trial = atoms.copy()
        trial.calc = calculator
        expected = design_e[i] @ coefficients * len(atoms) + sum(
            data.references[s] for s in atoms.get_chemical_symbols()
        )
        assert trial.get_potential_energy() == pytest.approx(expected, abs=1e-9)
        forces = design_f[offset : offset + 3 * len(atoms)] @ coefficients
        np.testing.assert_allclose(trial.get_forces().ravel(), forces, atol=1e-9)
        offset += 3 * len(atoms)
    # the reported errors are those of the calculator, by hand
    by_hand = []
    for atoms in data.structures:
        trial = atoms.copy()
        trial.calc = calculator
        by_hand.append((trial.get_potential_energy() - atoms.get_potential_energy()) / len(atoms))
    rmse = 1000 * np.sqrt(np.mean(np.square(by_hand)))
    assert result.errors["train"]["energy_rmse"] == pytest.approx(rmse, rel=1e-9)
    assert result.errors["train"]["structures"] == len(data.structures)
    assert result.reference_energies == {"Ag": pytest.approx(2.96), "Cu": pytest.approx(3.51)}


def test_linear_ace_recovers_the_labels_of_an_ace_potential_to_rounding(tmp_path) -> None:
    """Labels from a linear ACE potential with known coefficients are in the model's span: the
    fit must reproduce them (an independent check of design matrix, weights and solver)."""
    data = training_data(small_set(12))
    basis = SMALL.basis(data.elements())
    rng = np.random.default_rng(3)
    basis.basis_coeffs = rng.normal(0, 0.01, len(basis.basis_coeffs))
    truth = tmp_path / "truth.yaml"
    basis.to_BBasisConfiguration().save(str(truth))
    teacher = get_calculator(ACEPotential(truth, {"Cu": 3.51, "Ag": 2.96}), cache=False)
    structures = [_labelled(a, teacher) for a in data.structures] + [
        _labelled(a, teacher, a.info[CONFIG_TYPE]) for a in data.isolated
    ]
    result = fit(structures, SMALL, tmp_path / "fit")
    assert result.errors["train"]["energy_rmse"] < 1e-6
    assert result.errors["train"]["force_rmse"] < 1e-6


def test_an_ace_potential_gives_an_isolated_atom_its_reference_energy(tmp_path) -> None:
    result = fit(small_set(), SMALL, tmp_path)
    calculator = result.potential.build()
    for atom in isolated_atoms(("Cu", "Ag"), IsolatedAtoms()):
        atom.calc = calculator
        assert atom.get_potential_energy() == pytest.approx(
            result.reference_energies[atom.get_chemical_symbols()[0]], abs=1e-9
        )


def test_weights_are_pacemakers_uniform_policy_times_ours() -> None:
    structures = small_set(6)
    structures[0].info[CONFIG_TYPE] = "relaxed"
    data = training_data(structures, Weights(origins={"relaxed": 3.0}))
    w_e, w_f = ace_weights(data, "uniform")
    expected = np.array([3.0] + [1.0] * 5)
    np.testing.assert_allclose(w_e, expected / expected.sum())
    atoms_weights = np.concatenate(
        [np.full(len(a), w) for a, w in zip(data.structures, expected, strict=True)]
    )
    np.testing.assert_allclose(np.concatenate(w_f), atoms_weights / atoms_weights.sum())
    energy_e, energy_f = ace_weights(data, "energy")
    assert energy_e.sum() == pytest.approx(1.0) and sum(f.sum() for f in energy_f) == pytest.approx(
        1.0
    )
    assert not np.allclose(energy_e, w_e)


def test_zero_weight_structures_are_left_out_and_counted(tmp_path) -> None:
    structures = small_set(9)
    for atoms in structures[:3]:
        atoms.info[CONFIG_TYPE] = "sampled"
    result = fit(
        structures,
        LinearACE(
            functions=30,
            radial=(8, 2),
            angular=(0, 1),
            cutoff=5.0,
            weights=Weights(origins={"sampled": 0.0}),
        ),
        tmp_path / "b",
        validation=structures[:3],
    )
    assert result.left_out == 3
    assert result.errors["train"]["structures"] == 6
    assert result.errors["validation"]["structures"] == 3


def test_fit_refuses_bad_input_with_what_is_valid(tmp_path) -> None:
    with pytest.raises(TypeError, match="LinearACE"):
        fit(small_set(3), "ace", tmp_path)
    with pytest.raises(ValueError, match="no labelled structure"):
        fit([bulk("Cu")], SMALL, tmp_path)
    without = [a for a in small_set(3) if a.info[CONFIG_TYPE] != "IsolatedAtom"]
    with pytest.raises(ValueError, match=r"no reference energy for \['Ag', 'Cu'\]"):
        fit(without, SMALL, tmp_path)
    for bad, match in [
        (dict(cutoff=-1.0), "cutoff"),
        (dict(functions=0), "functions"),
        (dict(kappa=1.5), "kappa"),
        (dict(weighting="magic"), "weighting"),
        (dict(radial=(8, 2), angular=(0,)), "one entry per body order"),
        (dict(ridge=-1.0), "ridge"),
        (dict(energy="enthalpy"), "energy"),
    ]:
        with pytest.raises((TypeError, ValueError), match=match):
            LinearACE(**bad)
    with pytest.raises(ValueError, match="iterations"):
        PacemakerACE(iterations=0)
    with pytest.raises(ValueError, match="device"):
        MACE(device="gpu")
    with pytest.raises(ValueError, match="max_L"):
        MACE(max_L=4)


def test_fit_configs_are_frozen_hashable_picklable_and_readable() -> None:
    for settings in (LinearACE(), PacemakerACE(), MACE(options={"ema": True})):
        assert pickle.loads(pickle.dumps(settings)) == settings
        assert hash(settings) == hash(pickle.loads(pickle.dumps(settings)))
    assert str(LinearACE()) == (
        "linear_ace(cutoff=6, functions=150, weighting=uniform, seed=0, ridge=1e-06)"
    )
    assert str(LinearACE(ridge=1e-8)) != str(LinearACE())
    assert "--ema" in MACE(options={"ema": True}).arguments("t.xyz", None)
    assert "--valid_file" in MACE().arguments("t.xyz", "v.xyz")


def test_a_potential_config_is_keyed_by_content_and_refuses_a_changed_file(tmp_path) -> None:
    result = fit(small_set(), SMALL, tmp_path)
    potential = result.potential
    assert isinstance(potential, ACEPotential)
    assert potential.digest == file_digest(potential.path)
    assert pickle.loads(pickle.dumps(potential)) == potential
    assert str(potential).startswith("ace(linear_ace.yaml, sha256=")
    moved = tmp_path / "moved.yaml"
    moved.write_bytes(open(potential.path, "rb").read())
    assert ACEPotential(moved, potential.energies).digest == potential.digest
    with open(potential.path, "a") as handle:
        handle.write("\n# edited\n")
    with pytest.raises(ValueError, match="changed since its config was made"):
        potential.build()
    with pytest.raises(FileNotFoundError, match="no potential file"):
        ACEPotential(tmp_path / "absent.yaml")
    with pytest.raises(ValueError, match="not a chemical element"):
        ACEPotential(moved, {"Xx": 1.0})
    with pytest.raises(ValueError, match="device"):
        MACEPotential(moved, device="tpu")


def test_validation_errors_of_a_family_split_are_reported(tmp_path) -> None:
    structures = small_set(24)
    parts = split(structures, Split(0.75, 0.25, 0.0, seed=1))
    result = fit(parts["train"], SMALL, tmp_path, validation=parts["validation"])
    assert result.errors["validation"]["structures"] == len(parts["validation"])
    assert np.isfinite(result.errors["validation"]["force_rmse"])
    assert "validation:" in result.summary()
    assert result.to_dict()["errors"]["validation"] == result.errors["validation"]


def test_potential_errors_count_a_failing_structure_and_go_on() -> None:
    structures = [a for a in small_set(4) if len(a) > 1]

    class Failing(AseEMT):
        calls = 0

        def calculate(self, *args, **kwargs):
            Failing.calls += 1
            if Failing.calls == 1:
                raise RuntimeError("no convergence")
            super().calculate(*args, **kwargs)

    errors = potential_errors(structures, Failing())
    assert errors["failed"] == 1
    assert errors["structures"] == len(structures) - 1
    assert errors["energy_rmse"] == pytest.approx(0.0, abs=1e-9)


def test_a_second_run_relaxes_with_the_potential_the_first_fitted(tmp_path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        first = run_pipeline(max_structures=6, label_calculator=EMT(), workers=1)
    result = fit(first.stages["labelled"], SMALL, tmp_path)
    second = run_pipeline(
        max_structures=3,
        calculator=result.potential,
        volume_relax=None,
        perturbations=(),
        workers=1,
        rng=7,
    )
    relaxed = second.stages["full_relaxed"]
    assert relaxed, second.table()
    # the relaxed energies are the potential's, not EMT's: recompute one with each
    atoms = relaxed[0]
    trial = Atoms(atoms.numbers, atoms.positions, cell=atoms.cell, pbc=True)
    trial.calc = result.potential.build()
    assert trial.get_potential_energy() == pytest.approx(atoms.get_potential_energy(), abs=1e-8)
    trial.calc = AseEMT()
    assert abs(trial.get_potential_energy() - atoms.get_potential_energy()) > 1e-4
    # and relax() takes it directly
    out = relax([bulk("Cu", "fcc", a=3.7)], FullRelax(calculator=result.potential, max_steps=5))
    assert len(out) == 1
