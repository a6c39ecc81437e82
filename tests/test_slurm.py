"""Stages sent to a real SLURM cluster (the one-node cluster `.ci/services.sh` starts): results
bit for bit those of a local run, where each stage ran recorded in its job, and the faults a
cluster has (a job cancelled, a job past its wall time, a drained node, the controller
restarted): lost structures are resubmitted or reported with their reason, and a rerun into
the project computes only what is missing."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyiron_workflow as pwf
import pytest
from ase import Atoms
from ase.build import bulk
from services import require_slurm

from assyst_nodes import nodes
from assyst_nodes.calculators import ImportedCalculator
from assyst_nodes.lineage import UUID, update_uuid
from assyst_nodes.nodes import stages
from assyst_nodes.project import ProjectRecorder, open_project
from assyst_nodes.runtime.executors import Slurm, executor_config
from assyst_nodes.stages.relax import VolumeRelax

SERVICES = Path(__file__).resolve().parents[1] / ".ci" / "services.sh"

SLOW = textwrap.dedent(
    """
    import os, time
    from ase.calculators.emt import EMT

    class SlowEMT(EMT):
        '''EMT that sleeps ASSYST_TEST_SLEEP s per call on cells whose lattice constant is at
        least ASSYST_TEST_SLOW_AT Å (a stand-in for an expensive calculator).'''

        def calculate(self, atoms=None, *args, **kwargs):
            if atoms is not None and atoms.info.get("a", 0.0) >= float(
                os.environ.get("ASSYST_TEST_SLOW_AT", "inf")
            ):
                time.sleep(float(os.environ.get("ASSYST_TEST_SLEEP", "0")))
            super().calculate(atoms, *args, **kwargs)
    """
)
SETTINGS = VolumeRelax(max_steps=6, calculator=ImportedCalculator("slow_emt:SlowEMT"))


@pytest.fixture
def partition(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The test cluster's partition; the slow calculator importable in this process and in the
    SLURM jobs (sbatch exports the environment), which run this environment's python."""
    name = require_slurm()
    (tmp_path / "slow_emt.py").write_text(SLOW)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("PYTHONPATH", f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    return name


def cells(n: int) -> list[Atoms]:
    """``n`` fcc Cu cells with uuids, lattice constants 3.5 + 0.05 k Å (in ``info["a"]``)."""
    out = []
    for k in range(n):
        atoms = bulk("Cu", "fcc", a=3.5 + 0.05 * k, cubic=True)
        atoms.info["a"] = 3.5 + 0.05 * k
        out.append(update_uuid(atoms, "fixture", k))
    return out


def same(a: list[Atoms], b: list[Atoms]) -> None:
    """Bit for bit: uuids, positions, cells, energies (where there are any)."""
    assert [x.info[UUID] for x in a] == [y.info[UUID] for y in b]
    for x, y in zip(a, b, strict=True):
        assert np.array_equal(x.positions, y.positions)
        assert np.array_equal(x.cell.array, y.cell.array)
        assert (x.calc is None) == (y.calc is None)
        if x.calc is not None:
            assert x.get_potential_energy() == y.get_potential_energy()


def our_jobs(state: str | None = None) -> list[str]:
    """Ids of this package's SLURM jobs (named assyst-...), in ``state`` if given."""
    out = subprocess.run(
        ["squeue", "-h", "-o", "%i|%j|%T"], capture_output=True, text=True, check=False
    ).stdout
    rows = [line.split("|") for line in out.splitlines() if line.count("|") == 2]
    return [i for i, name, st in rows if name.startswith("assyst-") and state in (None, st)]


def wait_for(condition: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.3)


@pytest.fixture
def drained_node(partition: str) -> Iterator[str]:
    """The cluster's node, resumed again whatever the test does."""
    node = subprocess.run(
        ["sinfo", "-h", "-p", partition, "-o", "%N"], capture_output=True, text=True, check=True
    ).stdout.split()[0]
    try:
        yield node
    finally:
        subprocess.run(["scontrol", "update", f"nodename={node}", "state=resume"], check=False)


def test_the_macro_relaxes_on_slurm_samples_locally_and_gives_the_local_result(
    partition: str, tmp_path: Path
) -> None:
    tiny = {
        "max_atoms": 2,
        "spacegroups": [1, 2, 6, 10, 25, 47, 123, 191, 221],
        "max_structures": 4,
        "volume_relax": nodes.VolumeRelax(max_steps=15),
        "full_relax": nodes.FullRelax(max_steps=15),
        "seed": 11,
    }
    local = pwf.run(nodes.assyst, **tiny).outputs
    on_slurm = pwf.run(
        nodes.assyst,
        **tiny,
        sample_executor=nodes.LocalProcesses(2),
        relax_executor=Slurm(partition, workers=2, memory=1.0, run_time=600),
        recorder=ProjectRecorder(tmp_path / "proj", pipeline="slurm"),
    ).outputs
    for name in ("sampled", "volume_relaxed", "full_relaxed", "training_set"):
        same(getattr(on_slurm, name), getattr(local, name))
    assert on_slurm.sample_report.execution["executor"] == "local processes"
    ran = on_slurm.volume_report.execution
    assert ran["executor"] == "SlurmJobs" and len(ran["slurm_job_ids"]) == ran["chunks"] >= 2
    # the job in the project says where it ran
    project = open_project(tmp_path / "proj")
    table = project.job_table()
    relax_jobs = table[table["hamilton"] == "AssystRelax"]["job"]
    for name in relax_jobs:
        job = project.load(name)
        stored = job.output.report.execution
        assert stored["executor"] == "SlurmJobs" and stored["slurm_job_ids"]
        assert job.content["output/executor"] == "SlurmJobs"
        assert sorted(job.content["output/slurm_job_ids"]) == sorted(
            int(i) for i in stored["slurm_job_ids"]
        )
    # nothing left in the queue (a finished job may take a moment to leave squeue)
    wait_for(lambda: our_jobs() == [], 120, f"the queue to empty (left: {our_jobs()})")


def test_a_cancelled_slurm_job_is_resubmitted_and_nothing_is_lost(
    partition: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ASSYST_TEST_SLOW_AT", "0")  # every call sleeps
    monkeypatch.setenv("ASSYST_TEST_SLEEP", "0.3")
    cancelled: list[str] = []

    before = set(our_jobs())  # another test's job still leaving the queue is not ours

    def cancel_one() -> None:
        wait_for(lambda: set(our_jobs("RUNNING")) - before, 120, "a running job")
        job = sorted(set(our_jobs("RUNNING")) - before)[0]
        subprocess.run(["scancel", job], check=True)
        cancelled.append(job)

    canceller = threading.Thread(target=cancel_one)
    canceller.start()
    relaxed, report = stages.relax(
        cells(4), SETTINGS, executor=Slurm(partition, workers=2, resubmit=2)
    )
    canceller.join()
    assert cancelled and report.execution["resubmitted"] >= 1
    assert len(relaxed) == 4 and not report.drops
    monkeypatch.setenv("ASSYST_TEST_SLEEP", "0")
    same(relaxed, stages.relax(cells(4), SETTINGS)[0])


def test_a_job_past_its_wall_time_is_reported_and_a_rerun_computes_only_it(
    partition: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ASSYST_TEST_SLOW_AT", "3.6")  # the third of three cells
    monkeypatch.setenv("ASSYST_TEST_SLEEP", "45")  # two calls and more: past the 60 s wall time
    recorder = ProjectRecorder(tmp_path / "proj")
    slurm = Slurm(partition, workers=3, run_time=60, resubmit=0)
    relaxed, report = stages.relax(
        cells(3), SETTINGS, executor=slurm, chunksize=1, recorder=recorder
    )
    assert len(relaxed) == 2 and report.dropped == {"worker_lost": 1}
    (drop,) = report.drops
    assert drop.label == cells(3)[2].info[UUID] and "terminated" in drop.detail
    project = open_project(tmp_path / "proj")
    assert list(project.job_table()["status"]) == ["warning"]
    monkeypatch.setenv("ASSYST_TEST_SLEEP", "0")
    rerun, report = stages.relax(cells(3), SETTINGS, executor=slurm, recorder=recorder)
    assert report.flags["reused"] == 2 and not report.drops
    same(rerun, stages.relax(cells(3), SETTINGS)[0])
    assert list(project.job_table()["status"]) == ["finished"]


def test_a_drained_node_fails_the_waiting_chunks_and_a_rerun_computes_them(
    drained_node: str, partition: str, tmp_path: Path
) -> None:
    subprocess.run(
        ["scontrol", "update", f"nodename={drained_node}", "state=drain", "reason=test"],
        check=True,
    )
    recorder = ProjectRecorder(tmp_path / "proj")
    slurm = Slurm(partition, workers=2, resubmit=0, pending_timeout=8)
    start = time.monotonic()
    relaxed, report = stages.relax(cells(4), SETTINGS, executor=slurm, recorder=recorder)
    assert time.monotonic() - start < 90
    assert relaxed == [] and report.dropped == {"worker_lost": 4}
    assert all("pending for 8 s" in d.detail and "DRAINED" in d.detail for d in report.drops)
    assert our_jobs() == []  # cancelled, not left waiting
    project = open_project(tmp_path / "proj")
    assert list(project.job_table()["status"]) == ["aborted"]  # every structure lost
    subprocess.run(["scontrol", "update", f"nodename={drained_node}", "state=resume"], check=True)
    rerun, report = stages.relax(cells(4), SETTINGS, executor=slurm, recorder=recorder)
    assert len(rerun) == 4 and not report.drops
    same(rerun, stages.relax(cells(4), SETTINGS)[0])
    assert list(project.job_table()["status"]) == ["finished"]


def test_a_restart_of_slurmctld_mid_run_loses_nothing(
    partition: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ASSYST_TEST_SLOW_AT", "0")
    monkeypatch.setenv("ASSYST_TEST_SLEEP", "1.0")
    in_flight: list[str] = []

    def restart() -> None:
        wait_for(lambda: our_jobs("RUNNING"), 120, "a running job")
        subprocess.run(["bash", str(SERVICES), "restart-slurmctld"], check=True)
        in_flight.extend(our_jobs())  # still queued or running after the restart

    restarter = threading.Thread(target=restart)
    restarter.start()
    relaxed, report = stages.relax(cells(4), SETTINGS, executor=Slurm(partition, workers=2))
    restarter.join()
    assert in_flight, "the restart came after the run"
    assert len(relaxed) == 4 and not report.drops
    assert report.execution["resubmitted"] == 0
    monkeypatch.setenv("ASSYST_TEST_SLEEP", "0")
    same(relaxed, stages.relax(cells(4), SETTINGS)[0])


def test_slurm_configs_refuse_bad_settings_naming_them() -> None:
    with pytest.raises(ValueError, match="needs the partition"):
        Slurm("")
    with pytest.raises(ValueError, match="run_time must be > 0"):
        Slurm("debug", run_time=0)
    with pytest.raises(TypeError, match="memory must be a number"):
        Slurm("debug", memory="2G")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="workers must be an int >= 1"):
        Slurm("debug", workers=0)
    with pytest.raises(ValueError, match="executor must be one of local, slurm, got 'pbs'"):
        executor_config("pbs")
    with pytest.raises(ValueError, match=r"unknown slurm executor options \['partion'\]"):
        executor_config("slurm", partion="debug")
    assert executor_config("slurm", partition="debug", workers=3) == Slurm("debug", workers=3)
    assert Slurm("debug", memory=1.5).resource_dict("x")["memory_max"] == 2  # whole GB
    assert Slurm("debug", run_time=30).resource_dict("x")["run_time_max"] == 60  # at least 1 min


CLI_TINY = ["run", "--elements", "Cu", "--max-atoms", "2", "--spacegroups", "221,225,229",
            "--max-structures", "3", "--seed", "5", "--no-figures", "--max-steps", "10"]


def relax_executions(folder: Path) -> list[dict[str, object]]:
    project = open_project(folder)
    table = project.job_table()
    return [
        project.load(name).output.report.execution
        for name in table[table["hamilton"] == "AssystRelax"]["job"]
    ]


def test_the_cli_sends_the_relaxations_to_slurm_from_a_settings_file_section(
    partition: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from assyst_nodes.cli import main

    settings = tmp_path / "run.toml"
    settings.write_text(
        "[executors.relax]\n"
        f'kind = "slurm"\npartition = "{partition}"\nworkers = 2\nmemory = 1\nrun_time = 600\n'
        '[executors.sample]\nkind = "local"\nworkers = 2\n'
    )
    assert main([*CLI_TINY, "--config", str(settings), "--project", str(tmp_path / "p")]) == 0
    capsys.readouterr()
    executions = relax_executions(tmp_path / "p")
    assert len(executions) == 2
    assert all(e["executor"] == "SlurmJobs" and e["slurm_job_ids"] for e in executions)
    sample = open_project(tmp_path / "p").job_table()
    sample_job = sample[sample["hamilton"] == "AssystSample"]["job"].iloc[0]
    ran = open_project(tmp_path / "p").load(sample_job).output.report.execution
    assert ran["executor"] == "local processes"
    # the same run with --executor slurm for every stage, and the same training set
    assert main([*CLI_TINY, "--executor", "slurm", "--partition", partition,
                 "--project", str(tmp_path / "q")]) == 0
    capsys.readouterr()
    assert all(e["executor"] == "SlurmJobs" for e in relax_executions(tmp_path / "q"))
    from assyst_nodes.project import structure_frame

    first = structure_frame(tmp_path / "p", stage="filter")
    second = structure_frame(tmp_path / "q", stage="filter")
    assert list(first["uuid"]) == list(second["uuid"])
    assert main([*CLI_TINY, "--executor", "slurm", "--no-project"]) == 2
    assert "needs a partition" in capsys.readouterr().err


def test_the_slurm_benchmark_runs_and_checks_identical_results(
    partition: str, tmp_path: Path
) -> None:
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "slurm_fanout.py"
    out = tmp_path / "slurm.json"
    env = dict(os.environ, ASSYST_TEST_SLURM_PARTITION=partition)
    done = subprocess.run(
        [sys.executable, str(script), "--structures", "6", "--repeats", "1", "--tasks", "2",
         "--json", str(out)],
        env=env, capture_output=True, text=True, timeout=600, check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    import json

    record = json.loads(out.read_text())
    assert record["relax"]["structures"] == 6 and record["relax"]["identical"] is True
    assert record["trivial_tasks"]["tasks"] == 2 and record["trivial_tasks"]["seconds"] > 0
    assert record["relax"]["ratio_slurm_local"] > 0
    assert "ratio SLURM / local" in done.stdout
