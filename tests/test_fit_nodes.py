"""Fit and validate as nodes, macro tails, run_pipeline arguments and CLI options.

The fit is the linear ACE (extra ``ace``; without it these tests skip with the reason, and fail
under ``CI=true``); the suite is reduced to what runs in seconds.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import warnings
from pathlib import Path

import pyiron_workflow as pwf
import pytest
from services import _missing, require_slurm

from assyst_nodes import nodes
from assyst_nodes.calculators import EMT
from assyst_nodes.calculators.fitted import ACEPotential
from assyst_nodes.cli import main
from assyst_nodes.pipeline import run_pipeline
from assyst_nodes.runtime.executors import GPU_TEMPLATE, LocalProcesses, Slurm
from assyst_nodes.stages.fit import FitResult, LinearACE
from assyst_nodes.stages.split import Split
from assyst_nodes.stages.validate import Suite, Validation

TINY_FIT = LinearACE(functions=30, radial=(8, 2), angular=(0, 1), cutoff=5.0)
TINY_SUITE = Suite(
    ("Cu", "Ag"),
    phases=("fcc", "bcc"),
    compounds=("B2",),
    volume_points=5,
    phonons=False,
    vacancy_repeat=2,
    vacancy_steps=5,
    md_snapshots=1,
    md_steps=5,
    md_equilibration=10,
)


@pytest.fixture(autouse=True)
def _needs_pyace() -> None:
    if importlib.util.find_spec("pyace") is None:
        _missing('python-ace is not installed: pip install -e ".[ace]"')


@pytest.fixture(scope="module")
def labelled() -> list:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return run_pipeline(max_structures=8, label_calculator=EMT(), workers=1).stages["labelled"]


def test_the_fit_node_splits_by_family_and_fits(labelled, tmp_path) -> None:
    result = pwf.run(
        nodes.fit, structures=labelled, settings=TINY_FIT, directory=str(tmp_path)
    ).outputs.result
    assert isinstance(result, FitResult)
    assert isinstance(result.potential, ACEPotential)
    train = result.errors["train"]["structures"]
    validation = result.errors["validation"]["structures"]
    assert train + validation == len(labelled) - 2  # the isolated atoms are references
    assert validation > 0


def test_fit_if_does_nothing_without_settings_or_labels(labelled, tmp_path) -> None:
    assert pwf.run(nodes.fit_if, structures=labelled, settings=None).outputs.result is None
    assert pwf.run(nodes.fit_if, structures=[], settings=TINY_FIT).outputs.result is None
    assert (
        pwf.run(
            nodes.validate_if, fitted=None, reference=EMT(), suite=TINY_SUITE
        ).outputs.validation
        is None
    )


def test_the_fit_node_runs_on_an_executor_with_the_same_result(labelled, tmp_path) -> None:
    here = nodes.fit(labelled, TINY_FIT, Split(0.9, 0.1, 0.0), str(tmp_path / "here"))
    there = nodes.fit(
        labelled,
        TINY_FIT,
        Split(0.9, 0.1, 0.0),
        str(tmp_path / "there"),
        executor=LocalProcesses(1),
    )
    assert there.potential.digest == here.potential.digest
    assert there.errors == here.errors


def test_the_fit_node_runs_as_a_slurm_job_with_the_same_result(
    labelled, tmp_path, monkeypatch
) -> None:
    """The CPU run of what a GPU partition would do: the fit as one SLURM job."""
    partition = require_slurm()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    here = nodes.fit(labelled, TINY_FIT, Split(0.9, 0.1, 0.0), str(tmp_path / "here"))
    there = nodes.fit(
        labelled, TINY_FIT, Split(0.9, 0.1, 0.0), str(tmp_path / "there"),
        executor=Slurm(partition, workers=1, run_time=600),
    )
    assert there.potential.digest == here.potential.digest
    assert there.errors == here.errors


def test_the_fit_node_stores_a_job_through_a_recorder_also_on_an_executor(
    labelled, tmp_path
) -> None:
    from assyst_nodes.project import ProjectRecorder

    recorder = ProjectRecorder(tmp_path / "project", pipeline="fits")
    first = nodes.fit(labelled, TINY_FIT, recorder=recorder, executor=LocalProcesses(1))
    assert "_hdf5" in first.potential.path  # in the fit job's working directory
    table = recorder.project().job_table()
    assert list(table.loc[table.hamilton == "AssystFit", "status"]) == ["finished"]
    again = nodes.fit(labelled, TINY_FIT, recorder=recorder)  # reused, not fitted again
    assert again.potential == first.potential and again.errors == first.errors
    assert len(recorder.project().job_table()) == len(table)


def test_the_fit_node_refuses_bad_settings_and_recorders(labelled) -> None:
    with pytest.raises(TypeError, match="LinearACE"):
        nodes.fit(labelled, "linear_ace")
    with pytest.raises(TypeError, match="record_fit"):
        nodes.fit(labelled, TINY_FIT, recorder=object())


def test_run_pipeline_fits_and_validates_as_the_macros_tail(tmp_path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = run_pipeline(
            max_structures=8,
            label_calculator=EMT(),
            workers=1,
            fit=TINY_FIT,
            fit_directory=tmp_path,
            validate=TINY_SUITE,
        )
    assert isinstance(result.fit, FitResult)
    assert isinstance(result.validation, Validation)
    assert result.fit.files[0].startswith(str(tmp_path))
    summary = result.validation.summary()
    assert summary  # headline numbers of a real comparison
    errors = result.validation.errors.set_index("group")
    assert errors.loc["all", "structures"] > 0
    # without labels the tails do nothing
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plain = run_pipeline(max_structures=3, workers=1, fit=TINY_FIT, validate=TINY_SUITE)
    assert plain.fit is None and plain.validation is None


def test_the_macro_has_fit_and_validate_as_inputs_and_outputs() -> None:
    node = pwf.node(nodes.assyst)
    for name in ("fit", "fit_split", "fit_directory", "fit_executor", "validate"):
        assert name in node.inputs.keys()
    for name in ("fitted", "validation"):
        assert name in node.outputs.keys()


def test_cli_run_fits_and_validates_without_a_project(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    code = main(
        [
            "run",
            "--max-structures",
            "6",
            "--label",
            "emt",
            "--fit",
            "linear_ace",
            "--validate",
            "--no-project",
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "fitted: ace(linear_ace.yaml" in out
    assert "validation against emt:" in out
    assert list((tmp_path / "assyst_output" / "figures" / "validation").glob("*.png"))


def test_cli_refuses_a_fit_without_labels_and_a_validation_without_a_fit(capsys) -> None:
    assert main(["run", "--fit", "linear_ace", "--no-project"]) != 0
    assert "needs labels" in capsys.readouterr().err
    assert main(["run", "--label", "emt", "--validate", "--no-project"]) != 0
    assert "validate needs a fit" in capsys.readouterr().err


def test_a_slurm_job_with_gpus_asks_for_them_in_its_script() -> None:
    from jinja2 import Template

    resources = Slurm("gpu", gpus=2, run_time=3600).resource_dict("fit")
    script = Template(resources["submission_template"]).render(
        job_name="fit",
        working_directory="/w",
        partition="gpu",
        cores=1,
        run_time_max=3600,
        command="python x.py",
    )
    assert "#SBATCH --gres=gpu:2" in script and "#SBATCH --partition=gpu" in script
    assert "submission_template" not in Slurm("cpu").resource_dict("fit")
    assert "{gpus}" in GPU_TEMPLATE
    with pytest.raises(ValueError, match="gpus"):
        Slurm("gpu", gpus=-1)


def test_cli_fits_and_validates_an_existing_project_as_reused_jobs(tmp_path, capsys) -> None:
    project = str(tmp_path / "cuag")
    assert main(["fit", project]) == 2  # no project yet
    capsys.readouterr()
    assert main(["run", "--max-structures", "6", "--project", project, "--no-figures"]) == 0
    capsys.readouterr()
    assert main(["fit", project]) == 2
    assert "no labels" in capsys.readouterr().err
    assert main(["validate", project]) == 2
    assert "no fit job" in capsys.readouterr().err
    args = ["run", "--max-structures", "6", "--project", project, "--no-figures", "--label"]
    assert main([*args, "emt"]) == 0
    capsys.readouterr()
    assert main(["fit", project, "--weighting", "energy"]) == 0
    fitted = capsys.readouterr().out
    assert "weighting=energy" in fitted and "validation:" in fitted
    potential = fitted.split("potential: ")[1].split()[0]
    assert potential.endswith("linear_ace.yaml") and "fit_" in potential
    assert main(["fit", project, "--weighting", "energy"]) == 0  # reused: the same job
    assert capsys.readouterr().out.split("potential: ")[1].split()[0] == potential
    figures = tmp_path / "figures"
    assert main(["validate", project, "--figures", str(figures)]) == 0
    out = capsys.readouterr().out
    assert "against emt" in out and "md:liquid" in out and "vacancy_energy" in out
    assert len(list(figures.glob("*.png"))) == 3
    assert main(["jobs", project]) == 0
    table = capsys.readouterr().out
    for job in ("AssystFit", "AssystSuite", "AssystValidate"):
        assert job in table
    assert main(["validate", project, "--fit-job", "fit_000000000000"]) == 2
