"""The whole core pipeline: reproducibility, worker independence, lineage, reports."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assyst_nodes.calculators import EMT
from assyst_nodes.lineage import LINEAGE, SEED, STEP, UUID, chain, index_by_uuid
from assyst_nodes.pipeline import PipelineResult, combine, run_pipeline
from assyst_nodes.stages.filter import AspectFilter, DistanceFilter
from assyst_nodes.stages.perturb import RandomChoice, Rattle, Stretch
from assyst_nodes.stages.relax import FullRelax, VolumeRelax

TINY = {
    "elements": ("Cu", "Ag"),
    "max_atoms": 2,
    "spacegroups": [1, 2, 6, 10, 25, 47, 123, 191, 221],
    "max_structures": 4,
    "calculator": EMT(),
    "volume_relax": VolumeRelax(max_steps=15),
    "full_relax": FullRelax(max_steps=15),
    "perturbations": (
        Rattle(0.05, create_supercells=True) + Stretch(hydro=0.03, shear=0.03),
        RandomChoice(Stretch(hydro=0.2, shear=0.02), Stretch(hydro=0.02, shear=0.1), 0.5),
    ),
    "filters": DistanceFilter({"Cu": 0.9, "Ag": 1.0}) & AspectFilter(6.0),
}


def fingerprint(result: PipelineResult) -> list[tuple]:
    """Everything that must be identical bit for bit between two runs, in order."""
    rows = []
    for atoms in result.structures:
        energy = atoms.calc.results.get("energy") if atoms.calc is not None else None
        rows.append(
            (
                atoms.info[UUID],
                atoms.info[STEP],
                tuple(atoms.info[LINEAGE]),
                atoms.numbers.tobytes(),
                atoms.positions.tobytes(),
                atoms.cell.array.tobytes(),
                energy,
            )
        )
    return rows


@pytest.fixture(scope="module")
def tiny_run() -> PipelineResult:
    return run_pipeline(**TINY, rng=11)


@settings(max_examples=3, deadline=None)
@given(seed=st.integers(min_value=0, max_value=2**63 - 1))
def test_pipeline_is_reproducible_bit_for_bit_from_one_seed(seed: int) -> None:
    first = run_pipeline(**TINY, rng=seed)
    second = run_pipeline(**TINY, rng=seed)
    assert len(first.structures) > 0
    assert fingerprint(first) == fingerprint(second)
    for key in first.stages:
        assert [a.info[UUID] for a in first.stages[key]] == [
            a.info[UUID] for a in second.stages[key]
        ]


def test_pipeline_with_relaxation_over_two_processes_gives_the_same_result(
    tiny_run: PipelineResult,
) -> None:
    parallel = run_pipeline(**TINY, rng=11, workers=2)
    assert fingerprint(parallel) == fingerprint(tiny_run)


def test_pipeline_different_seeds_give_different_sets(tiny_run: PipelineResult) -> None:
    other = run_pipeline(**TINY, rng=12)
    assert {a.info[UUID] for a in other.structures}.isdisjoint(
        {a.info[UUID] for a in tiny_run.structures}
    )


def test_every_final_structure_traces_back_to_a_sampled_crystal(tiny_run: PipelineResult) -> None:
    sampled = {a.info[UUID] for a in tiny_run.stages["sampled"]}
    pool = index_by_uuid(tiny_run.stages["combined"])  # raises if a uuid occurs twice
    assert len(pool) == len(tiny_run.stages["combined"])
    expected_steps = {
        "pyxtal": 1,
        str(TINY["volume_relax"]): 2,
        str(TINY["full_relax"]): 3,
    }
    perturbation_steps = {str(p) for p in TINY["perturbations"]}
    kinds = set()
    for atoms in tiny_run.structures:
        assert atoms.info[SEED] in sampled
        links = chain(atoms, pool)
        assert links[0].info[UUID] == atoms.info[SEED]
        assert links[0].info[STEP] == "pyxtal"
        for parent, child in itertools.pairwise(links):
            # each link is the direct parent of the next one
            assert child.info[LINEAGE][-1] == parent.info[UUID]
            assert child.info[LINEAGE][:-1] == parent.info[LINEAGE]
        step = atoms.info[STEP]
        if step in perturbation_steps:
            kinds.add("perturbed")
            assert links[-2].info[STEP] in {str(TINY["volume_relax"]), str(TINY["full_relax"])}
        else:
            kinds.add(step)
            assert len(links) == expected_steps[step]
    assert kinds == {"pyxtal", "volume_relax", "full_relax", "perturbed"}


def test_pipeline_reports_each_stage_and_accounts_for_every_structure(
    tiny_run: PipelineResult,
) -> None:
    names = [r.stage for r in tiny_run.reports]
    assert names[:4] == ["sample", "volume_relax", "full_relax", "perturb"]
    assert names[4] == str(TINY["filters"])
    sample_report, volume, full, perturb_report, filter_report = tiny_run.reports
    assert sample_report.n_out == len(tiny_run.stages["sampled"]) == TINY["max_structures"]
    assert sample_report.n_in == sample_report.n_out + sample_report.n_dropped
    for report, key in ((volume, "volume_relaxed"), (full, "full_relaxed")):
        assert report.n_out == len(tiny_run.stages[key])
        assert report.n_in == report.n_out + report.n_dropped
    n_relaxed = len(tiny_run.stages["volume_relaxed"]) + len(tiny_run.stages["full_relaxed"])
    assert perturb_report.n_in == n_relaxed * len(TINY["perturbations"])
    assert perturb_report.n_out == len(tiny_run.stages["perturbed"])
    assert perturb_report.n_in == perturb_report.n_out + perturb_report.n_dropped
    assert filter_report.n_in == len(tiny_run.stages["combined"])
    assert filter_report.n_out == len(tiny_run.structures)
    table = tiny_run.table()
    for name in names[:4]:
        assert name in table
    assert f"{len(tiny_run.structures)} structures in the training set; seed 11" in table


def test_filtered_set_passes_the_filters_and_relaxed_sets_carry_energies(
    tiny_run: PipelineResult,
) -> None:
    assert all(TINY["filters"](a) for a in tiny_run.structures)
    for key in ("volume_relaxed", "full_relaxed"):
        for atoms in tiny_run.stages[key]:
            assert np.isfinite(atoms.get_potential_energy())
            assert atoms.get_forces().shape == (len(atoms), 3)


def test_pipeline_without_relaxations_perturbs_nothing_and_keeps_samples() -> None:
    result = run_pipeline(**{**TINY, "volume_relax": None, "full_relax": None}, rng=3)
    assert [r.stage for r in result.reports][:2] == ["sample", "perturb"]
    assert result.stages["perturbed"] == []
    assert len(result.structures) == len(result.stages["sampled"])


def test_combine_keeps_first_occurrence_of_each_uuid(tiny_run: PipelineResult) -> None:
    sampled = tiny_run.stages["sampled"]
    merged = combine(sampled, sampled[:2], tiny_run.stages["full_relaxed"])
    assert [a.info[UUID] for a in merged] == [
        a.info[UUID] for a in sampled + tiny_run.stages["full_relaxed"]
    ]
