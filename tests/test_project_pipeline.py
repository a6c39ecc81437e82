"""The ASSYST macro run into a project: one job per stage run, reuse on rerun, the history of a
training structure, and a run killed during relaxation that resumes to the uninterrupted result."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pyiron_workflow as pwf
import pytest

from assyst_nodes import nodes
from assyst_nodes.lineage import STEP, UUID
from assyst_nodes.project import ProjectRecorder, history, open_project, structures

pytestmark = pytest.mark.usefixtures("pyiron_database")  # SQLite and PostgreSQL

TINY = {
    "max_atoms": 2,
    "spacegroups": [1, 2, 6, 10, 25, 47, 123, 191, 221],
    "max_structures": 4,
    "volume_relax": nodes.VolumeRelax(max_steps=15),
    "full_relax": nodes.FullRelax(max_steps=15),
    "seed": 11,
}
STAGE_JOBS = ["AssystSample", "AssystRelax", "AssystRelax", "AssystCombine", "AssystPerturb",
              "AssystCombine", "AssystFilter"]


def fingerprint(structures: list) -> list[tuple]:
    return [
        (s.info[UUID], s.positions.tobytes(), s.cell.array.tobytes(),
         None if s.calc is None else s.calc.results["energy"])
        for s in structures
    ]


def job_rows(path: Path) -> pd.DataFrame:
    return open_project(path).job_table()


def test_macro_into_a_project_makes_one_job_per_stage_run_and_a_rerun_makes_none(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "assyst_project"
    recorder = ProjectRecorder(str(folder), pipeline="tiny")
    first = pwf.run(nodes.assyst, **TINY, recorder=recorder).outputs
    table = job_rows(folder)
    stage_rows = table[table["hamilton"] != "AssystPipeline"]
    assert sorted(stage_rows["hamilton"]) == sorted(STAGE_JOBS)
    assert set(table["status"]) == {"finished"}
    master = table[table["hamilton"] == "AssystPipeline"]
    assert len(master) == 1
    assert stage_rows["masterid"].isna().all()  # listed by the pipeline job, not its children
    listed = open_project(folder).load(str(master["job"].iloc[0])).output
    assert sorted(listed["jobs"]) == sorted(stage_rows["job"]) and listed["missing"] == []
    sample_id = int(stage_rows[stage_rows["hamilton"] == "AssystSample"]["id"].iloc[0])
    relax_rows = stage_rows[stage_rows["hamilton"] == "AssystRelax"]
    assert sample_id in set(relax_rows["parentid"])  # volume relax consumed the sampled set

    second = pwf.run(nodes.assyst, **TINY, recorder=recorder).outputs
    assert len(job_rows(folder)) == len(table)
    assert fingerprint(second.training_set) == fingerprint(first.training_set)
    in_memory = pwf.run(nodes.assyst, **TINY).outputs
    assert fingerprint(in_memory.training_set) == fingerprint(first.training_set)
    assert fingerprint(structures(folder, stage="filter")) == fingerprint(first.training_set)

    full_ids = {s.info[UUID] for s in first.full_relaxed}
    perturbed_ids = {s.info[UUID] for s in first.perturbed}
    perturbed = next(
        s for s in first.training_set
        if s.info[UUID] in perturbed_ids and s.info["lineage"][-1] in full_ids
    )
    steps = [link.step for link in history(folder, perturbed.info[UUID])]
    assert steps[:3] == ["pyxtal", "volume_relax", "full_relax"]
    assert steps[-1] == perturbed.info[STEP] and len(steps) == 4


SLOW_CALCULATOR = textwrap.dedent(
    """
    import os, pathlib, time
    from ase.calculators.emt import EMT

    class SlowEMT(EMT):
        '''EMT that sleeps SLOW_EMT_SECONDS per evaluation and marks its first one.'''

        def calculate(self, *args, **kwargs):
            marker = pathlib.Path(os.environ["SLOW_EMT_MARKER"])
            if not marker.exists():
                marker.write_text("relaxing")
            time.sleep(float(os.environ.get("SLOW_EMT_SECONDS", "0")))
            super().calculate(*args, **kwargs)
    """
)

RUN = textwrap.dedent(
    """
    import sys
    import pyiron_workflow as pwf
    from assyst_nodes import nodes
    from assyst_nodes.project import ProjectRecorder

    calculator = nodes.ImportedCalculator("slow_emt:SlowEMT")
    out = pwf.run(
        nodes.assyst, max_atoms=2, spacegroups=[1, 2, 6, 10, 25, 47, 123, 191, 221],
        max_structures=4, volume_relax=nodes.VolumeRelax(max_steps=15),
        full_relax=nodes.FullRelax(max_steps=15), seed=11, calculator=calculator,
        recorder=ProjectRecorder(sys.argv[1], pipeline="killed"),
    ).outputs
    print(len(out.training_set))
    """
)


def test_a_run_killed_during_relaxation_resumes_to_the_uninterrupted_result(
    tmp_path: Path,
) -> None:
    (tmp_path / "slow_emt.py").write_text(SLOW_CALCULATOR)
    (tmp_path / "run.py").write_text(RUN)
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "SLOW_EMT_SECONDS": "0.05",
           "SLOW_EMT_MARKER": str(tmp_path / "marker")}
    folder = tmp_path / "project"
    process = subprocess.Popen(
        [sys.executable, str(tmp_path / "run.py"), str(folder)], env=env, cwd=tmp_path,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 120
    while not (tmp_path / "marker").exists():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the run never started relaxing"
        time.sleep(0.05)
    time.sleep(0.5)  # well inside the volume relaxation (15 steps x 4 structures x 0.05 s)
    process.send_signal(signal.SIGKILL)
    process.wait()
    killed = job_rows(folder)
    sample_before = killed[killed["hamilton"] == "AssystSample"]
    assert list(sample_before["status"]) == ["finished"]
    assert "AssystFilter" not in set(killed["hamilton"])  # it really stopped early

    env["SLOW_EMT_SECONDS"] = "0"
    done = subprocess.run(
        [sys.executable, str(tmp_path / "run.py"), str(folder)], env=env, cwd=tmp_path,
        capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    resumed = job_rows(folder)
    assert set(resumed["status"]) == {"finished"}  # nothing left running
    assert not resumed["job"].duplicated().any()
    assert sorted(resumed[resumed["hamilton"] != "AssystPipeline"]["hamilton"]) == sorted(
        STAGE_JOBS
    )
    sample_after = resumed[resumed["hamilton"] == "AssystSample"]
    assert list(sample_after["id"]) == list(sample_before["id"])  # reused, not recomputed

    reference_folder = tmp_path / "reference"
    reference = subprocess.run(
        [sys.executable, str(tmp_path / "run.py"), str(reference_folder)], env=env,
        cwd=tmp_path, capture_output=True, text=True, timeout=600,
    )
    assert reference.returncode == 0, reference.stderr[-3000:]
    assert fingerprint(structures(folder, stage="filter")) == fingerprint(
        structures(reference_folder, stage="filter")
    )


@pytest.mark.parametrize("bad", ["not a recorder", 3])
def test_the_macro_rejects_a_recorder_that_is_none_of_the_kind(bad: object) -> None:
    with pytest.raises(TypeError, match="record"):
        pwf.run(nodes.assyst, **TINY, recorder=bad)
