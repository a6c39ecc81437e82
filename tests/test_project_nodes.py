"""The project layer driven by the node layer: stage nodes record into a project, and a stored
job is rerun from the table alone. Separate from ``test_project.py`` because importing the node
layer (pyiron_workflow) alone takes several seconds."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from assyst_nodes.nodes import stages
from assyst_nodes.nodes.recording import Recorder
from assyst_nodes.project import ProjectRecorder, open_project, rerun, structures
from assyst_nodes.stages.relax import VolumeRelax
from assyst_nodes.stages.sample import Formulas

pytestmark = pytest.mark.usefixtures("pyiron_database")  # SQLite and PostgreSQL

RELAX = VolumeRelax(max_steps=5)


def job_rows(path: Path) -> pd.DataFrame:
    """The job table of the project at ``path``."""
    return open_project(path).job_table()


def same(a: list, b: list) -> bool:
    """Same uuids, positions and energies (where present)."""
    return [x.info["uuid"] for x in a] == [y.info["uuid"] for y in b] and all(
        (x.positions == y.positions).all()
        and (x.calc is None or x.get_potential_energy() == y.get_potential_energy())
        for x, y in zip(a, b, strict=True)
    )


def test_project_recorder_is_a_recorder(tmp_path: Path) -> None:
    assert isinstance(ProjectRecorder(tmp_path / "proj", pipeline="run"), Recorder)


def test_node_stages_record_and_rerun_from_the_table_alone(tmp_path: Path) -> None:
    recorder = ProjectRecorder(tmp_path / "proj", pipeline="nodes")
    sampled, _ = stages.sample(
        Formulas.range("Cu", 1, 3), [221, 225, 229], max_atoms=2, seed=3, recorder=recorder
    )
    relaxed, report = stages.relax(sampled, settings=RELAX, recorder=recorder)
    table = job_rows(tmp_path / "proj").set_index("hamilton")
    relax_job = table.loc["AssystRelax", "job"]
    again, report_again = rerun(tmp_path / "proj", relax_job, force=True)
    assert same(again, relaxed)
    assert report_again.n_out == report.n_out
    after = job_rows(tmp_path / "proj")
    assert list(after["job"]).count(relax_job) == 1
    assert set(after["status"]) == {"finished"}
    assert same(rerun(tmp_path / "proj", table.loc["AssystSample", "job"])[0], sampled)
    assert same(structures(tmp_path / "proj", stage="relax"), relaxed)
