"""The whole core pipeline: reproducibility, worker independence, lineage, reports, the CLI."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assyst_nodes.calculators import EMT
from assyst_nodes.cli import main
from assyst_nodes.filters import AspectFilter, DistanceFilter
from assyst_nodes.lineage import LINEAGE, SEED, STEP, UUID, chain, index_by_uuid
from assyst_nodes.perturbations import RandomChoice, Rattle, Stretch
from assyst_nodes.pipeline import PipelineResult, combine, run_pipeline
from assyst_nodes.relaxations import FullRelax, VolumeRelax

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


CLI_TINY = ["run", "--elements", "Cu", "--max-atoms", "2", "--spacegroups", "221,225,229",
            "--max-structures", "2", "--seed", "5"]


def test_cli_run_prints_the_stage_table_in_memory(capsys: pytest.CaptureFixture[str]) -> None:
    code = main([*CLI_TINY, "--no-project"])
    out = capsys.readouterr().out
    assert code == 0
    assert "sample" in out and "full_relax" in out and "perturb" in out
    assert "structures in the training set; seed 5" in out


def test_cli_run_stores_every_stage_in_a_project_and_reuses_it(
    capsys: pytest.CaptureFixture[str], tmp_path
) -> None:
    from ase.io import read

    folder = tmp_path / "proj"
    assert main([*CLI_TINY, "--project", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "structures in the training set; seed 5" in out
    assert "AssystSample 1" in out and "AssystRelax 2" in out and "AssystPipeline 1" in out
    n = int(out.split(" structures in the training set")[0].split()[-1])
    assert len(read(folder / "training_set.extxyz", index=":")) == n
    assert main([*CLI_TINY, "--project", str(folder)]) == 0
    again = capsys.readouterr().out
    jobs = [line for line in out.splitlines() if line.startswith("project ")]
    assert jobs == [line for line in again.splitlines() if line.startswith("project ")]


def test_cli_rejects_bad_input_with_a_clear_message(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--elements", "Cu", "Qq"]) == 2
    assert "unknown element symbol 'Qq'" in capsys.readouterr().err
    assert main(["run", "--spacegroups", "229-231"]) == 2
    assert "1..230" in capsys.readouterr().err


def test_cli_run_into_a_project_does_not_flood_stderr_with_pyiron_debug_logs(tmp_path) -> None:
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "assyst_nodes", *CLI_TINY, "--project", str(tmp_path / "p")],
        capture_output=True, text=True, cwd=tmp_path, timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "sql_query" not in done.stderr and "DEBUG" not in done.stderr
    assert not (tmp_path / "pyiron.log").exists()


def test_cli_jobs_history_and_export_read_a_project_back(
    capsys: pytest.CaptureFixture[str], tmp_path
) -> None:
    from ase.io import read

    from assyst_nodes.project import structures

    folder = tmp_path / "proj"
    assert main([*CLI_TINY, "--project", str(folder)]) == 0
    capsys.readouterr()
    assert main(["jobs", str(folder)]) == 0
    jobs = capsys.readouterr().out
    assert "AssystSample" in jobs and "AssystFilter" in jobs and "finished" in jobs
    final = structures(folder, stage="filter")
    perturbed = next(s for s in final if s.info[STEP] not in ("pyxtal", "volume_relax",
                                                               "full_relax"))
    assert main(["history", str(folder), perturbed.info[UUID]]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("pyxtal") and perturbed.info[UUID] in lines[-1]
    assert main(["export", str(folder), str(tmp_path / "set.extxyz")]) == 0
    assert f"{len(final)} structures written" in capsys.readouterr().out
    assert len(read(tmp_path / "set.extxyz", index=":")) == len(final)
    assert main(["export", str(folder), str(tmp_path / "set.pkl"), "--step", "pyxtal"]) == 0
    import pandas as pd

    table = pd.read_pickle(tmp_path / "set.pkl")
    assert set(table["step"]) == {"pyxtal"}
    assert main(["history", str(folder), "no-such-uuid"]) == 2
    assert "no-such-uuid" in capsys.readouterr().err
    assert main(["jobs", str(tmp_path / "nothing")]) == 2
    assert "no project in" in capsys.readouterr().err


def test_cli_run_takes_its_settings_from_a_toml_file_and_flags_win(
    capsys: pytest.CaptureFixture[str], tmp_path
) -> None:
    config = tmp_path / "run.toml"
    config.write_text(
        'elements = ["Cu"]\nmax_atoms = 2\nspacegroups = "221,225,229"\nmax_structures = 2\n'
        "seed = 5\nno_project = true\n"
    )
    assert main(["run", "--config", str(config), "--seed", "6"]) == 0
    out = capsys.readouterr().out
    assert "structures in the training set; seed 6" in out
    config.write_text("max_atomz = 2\n")
    assert main(["run", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert "unknown keys ['max_atomz']" in err and "max_atoms" in err
    assert main(["run", "--config", str(tmp_path / "missing.toml")]) == 2
    assert "cannot read config file" in capsys.readouterr().err
