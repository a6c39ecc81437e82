"""Optimiser defaults of the relaxations (issue 17): fewer force calls than the reference's.

Counts force calls (every ``calculate`` that computes), never timings.
"""

from __future__ import annotations

import pickle

import pytest
from ase.build import bulk
from ase.calculators.emt import EMT as AseEMT

from assyst_nodes.lineage import RELAX_CONVERGED
from assyst_nodes.reports import StageReport
from assyst_nodes.stages.filter import DistanceFilter
from assyst_nodes.stages.relax import (
    REFERENCE_OPTIMIZER,
    CellRelax,
    FullRelax,
    Relax,
    SymmetryRelax,
    VolumeRelax,
    relax,
)
from assyst_nodes.stages.sample import Formulas, sample

CLASSES = [Relax, CellRelax, VolumeRelax, SymmetryRelax, FullRelax]


class CountingEMT(AseEMT):
    """ASE's EMT counting the calls that compute (cached results are not counted)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def calculate(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        self.calls += 1
        super().calculate(*args, **kwargs)


def crystals(n: int) -> list:
    """``n`` crystals of the canonical Cu-Ag set (up to 4 atoms, seed 3)."""
    return list(
        sample(Formulas.range(("Cu", "Ag"), 0, 5), range(1, 231), max_atoms=4,
               max_structures=n, shuffle=True, rng=3,
               tolerance=DistanceFilter({"Cu": 0.9, "Ag": 1.0}), progress=False)
    )


def test_defaults_are_bfgs_with_a_softer_initial_hessian() -> None:
    for cls in CLASSES:
        settings = cls()
        assert (settings.algorithm, settings.alpha, settings.maxstep) == ("BFGS", 20.0, None)
        reference = cls(**REFERENCE_OPTIMIZER)
        assert (reference.algorithm, reference.alpha, reference.maxstep) == ("LBFGS", 70.0, None)
        assert reference != settings and hash(reference) != hash(settings)
        assert pickle.loads(pickle.dumps(reference)) == reference
        assert str(reference) == str(settings)  # the optimiser is not part of the step name


@pytest.mark.parametrize("algorithm", ["LBFGS", "BFGS", "FIRE"])
def test_optimizer_gets_the_fields(algorithm: str) -> None:
    settings = FullRelax(algorithm=algorithm, alpha=35.0, maxstep=0.1)
    copy = pickle.loads(pickle.dumps(settings))
    assert copy == settings and hash(copy) == hash(settings)
    atoms = bulk("Cu")
    atoms.calc = AseEMT()
    optimizer = settings.optimizer(atoms)
    assert type(optimizer).__name__ == algorithm
    assert optimizer.maxstep == 0.1
    if algorithm == "BFGS":
        assert optimizer.H0[0, 0] == 35.0
    elif algorithm == "LBFGS":
        assert optimizer.state.H0.diagonal() == pytest.approx(1 / 35.0)


@pytest.mark.parametrize(
    ("kwargs", "error", "words"),
    [
        ({"alpha": 0.0}, ValueError, ["alpha", "0.0", "> 0", "eV/Å^2", "70.0"]),
        ({"alpha": -5}, ValueError, ["alpha", "-5", "> 0"]),
        ({"alpha": float("nan")}, ValueError, ["alpha", "nan"]),
        ({"alpha": "20"}, TypeError, ["alpha", "'20'"]),
        ({"maxstep": 0.0}, ValueError, ["maxstep", "0.0", "> 0", "None"]),
        ({"maxstep": float("inf")}, ValueError, ["maxstep", "inf"]),
        ({"maxstep": 1.5}, ValueError, ["maxstep", "1.5", "<= 1"]),
        ({"maxstep": "0.2"}, TypeError, ["maxstep", "'0.2'"]),
        ({"algorithm": "GPMin"}, ValueError, ["algorithm", "GPMin", "BFGS", "FIRE", "LBFGS"]),
    ],
)
def test_bad_optimizer_fields_are_named_with_the_valid_ones(kwargs, error, words) -> None:
    for cls in CLASSES:
        with pytest.raises(error) as caught:
            cls(**kwargs)
        for word in words:
            assert word in str(caught.value), (word, str(caught.value))


def test_step_limit_keeps_relax_converged_false_and_the_report_counts_it() -> None:
    structures = crystals(3)
    report = StageReport()
    out = relax(structures, FullRelax(max_steps=1), report=report, progress=False)
    assert len(out) == 3 and all(a.info[RELAX_CONVERGED] is False for a in out)
    assert report.flags["not_converged"] == 3 and report.n_out == 3


def force_calls(structures: list, settings: dict) -> tuple[list[int], list[bool]]:
    """Force calls and convergence of volume-then-full relaxations of each structure (EMT)."""
    calls, converged = [], []
    for atoms in structures:
        calculator = CountingEMT()
        (volume,) = relax([atoms], VolumeRelax(calculator=calculator, **settings),
                          progress=False)
        (full,) = relax([volume], FullRelax(calculator=calculator, **settings), progress=False)
        calls.append(calculator.calls)
        converged.append(bool(volume.info[RELAX_CONVERGED] and full.info[RELAX_CONVERGED]))
    return calls, converged


def test_defaults_need_fewer_force_calls_than_the_reference_settings_and_converge() -> None:
    structures = crystals(10)
    ours, ours_converged = force_calls(structures, {})
    reference, _ = force_calls(structures, REFERENCE_OPTIMIZER)
    assert all(ours_converged)
    assert sum(ours) < sum(reference)
    # and the same work gives the same counts again (deterministic)
    assert force_calls(structures[:3], {})[0] == ours[:3]
