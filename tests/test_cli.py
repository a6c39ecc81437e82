"""The ``assyst-nodes`` command: run (in memory, into a project, from a settings file, with
figures), jobs, history and export."""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np
import pytest
from ase.io import read

from assyst_nodes.cli import build_parser, main
from assyst_nodes.lineage import STEP, UUID
from assyst_nodes.plot import FIGURES

CLI_TINY = ["run", "--elements", "Cu", "--max-atoms", "2", "--spacegroups", "221,225,229",
            "--max-structures", "2", "--seed", "5", "--no-figures"]


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


def test_cli_run_into_a_project_does_not_flood_stderr_with_pyiron_or_pint_logs(tmp_path) -> None:
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "assyst_nodes", *CLI_TINY, "--project", str(tmp_path / "p")],
        capture_output=True, text=True, cwd=tmp_path, timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "sql_query" not in done.stderr and "DEBUG" not in done.stderr
    assert "WARNING" not in done.stderr  # e.g. pint's, while semantikon builds its unit table
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
    assert "cannot read settings file" in capsys.readouterr().err


def test_cli_run_writes_the_training_set_and_every_figure_as_png(
    capsys: pytest.CaptureFixture[str], tmp_path
) -> None:
    from ase.io import read

    out_folder = tmp_path / "out"
    args = [a for a in CLI_TINY if a != "--no-figures"]
    assert main([*args, "--no-project", "--output", str(out_folder)]) == 0
    out = capsys.readouterr().out
    n = int(out.split(" structures in the training set")[0].split()[-1])
    assert len(read(out_folder / "training_set.extxyz", index=":")) == n
    pngs = sorted(p.stem for p in (out_folder / "figures").glob("*.png"))
    assert pngs == sorted([*FIGURES, "stage_counts"])
    for path in (out_folder / "figures").glob("*.png"):
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5_000
    assert f"{len(pngs)} figures written" in out


def test_cli_settings_written_and_read_back_reproduce_the_run(
    capsys: pytest.CaptureFixture[str], tmp_path
) -> None:
    from ase.io import read

    for suffix in (".yaml", ".toml"):
        settings_file = tmp_path / f"run{suffix}"
        args = [*CLI_TINY, "--no-project", "--rattle", "0.07", "--strain", "0.02", "0.03",
                "--radii", "Cu=0.95", "--max-steps", "12", "--relax", "symmetry",
                "--output", str(tmp_path / f"a{suffix}")]
        assert main([*args, "--write-config", str(settings_file)]) == 0
        assert "settings written to" in capsys.readouterr().out
        assert not (tmp_path / f"a{suffix}").exists()  # --write-config stops before the run
        assert main(args) == 0
        direct = capsys.readouterr().out
        again = tmp_path / f"b{suffix}"
        assert main(["run", "--config", str(settings_file), "--output", str(again)]) == 0
        from_file = capsys.readouterr().out
        assert "symmetry_relax" in direct
        table = [line.split()[:3] for line in direct.splitlines()[2:7]]
        assert table == [line.split()[:3] for line in from_file.splitlines()[2:7]]
        first = read(tmp_path / f"a{suffix}" / "training_set.extxyz", index=":")
        second = read(again / "training_set.extxyz", index=":")
        assert [a.info[UUID] for a in first] == [a.info[UUID] for a in second]
        assert all((a.positions == b.positions).all() for a, b in zip(first, second, strict=True))


def test_cli_run_takes_calculator_relax_and_perturbation_settings(
    capsys: pytest.CaptureFixture[str], tmp_path
) -> None:
    args = ["run", "--elements", "Cu", "--max-atoms", "2", "--spacegroups", "229",
            "--max-structures", "2", "--no-project", "--no-figures", "--output", str(tmp_path),
            "--calculator", "ase.calculators.lj:LennardJones",
            "--calculator-kwargs", '{"sigma": 2.3, "epsilon": 0.1, "rc": 6.0}',
            "--relax", "cell", "--fmax", "0.01", "--max-steps", "15",
            "--rattle", "0.05", "--large-strain", "0.3", "0.1", "--no-supercells",
            "--retries", "3", "--max-aspect", "5", "--radii", "0.8"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "cell_relax" in out and "volume_relax" in out
    from ase.io import read

    steps = {a.info[STEP] for a in read(tmp_path / "training_set.extxyz", index=":")}
    assert "rattle(0.05)+stretch(hydro=0.05, shear=0.05)" in steps
    assert {len(a) for a in read(tmp_path / "training_set.extxyz", index=":")} == {2}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--calculator", "nonexistent_pkg.mod:Calc"], "cannot import module 'nonexistent_pkg"),
        (["--calculator", "gaussian-process"], "neither a built-in"),
        (["--calculator", "lj", "--calculator-kwargs", '{"sigmaa": 1}'], "sigmaa"),
        (["--calculator-kwargs", "[1, 2]"], "expected a JSON object"),
        (["--radii", "Cu=0.9", "1.0"], "one number or all 'El=R' pairs"),
        (["--radii", "Cu=x"], "radii must look like"),
        (["--max-structures", "many"], "'none' (no cap)"),
        (["--workers", "0"], "workers must be >= 1, got 0"),
        (["--time-limit", "-1"], "time_limit must be seconds > 0"),
        (["--relax", "sideways"], "invalid choice: 'sideways'"),
        (["--relax", "cell", "--pressure", "1.0"], "would be dropped by relax 'cell'"),
        (["--relax", "positions", "--pressure", "-2"], "use relax (--relax) full or symmetry"),
        (["--write-config", "run.json"], "must end in .toml, .yaml or .yml"),
    ],
)
def test_cli_rejects_bad_run_settings_before_any_work(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str], tmp_path
) -> None:
    try:
        code = main(["run", "--no-project", "--output", str(tmp_path / "o"), *args])
    except SystemExit as stop:  # argparse rejects bad option values itself
        code = stop.code
    assert code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_cli_reads_yaml_settings_and_names_bad_files(
    capsys: pytest.CaptureFixture[str], tmp_path
) -> None:
    config = tmp_path / "run.yml"
    config.write_text("elements: Cu\nmax_atoms: 2\nspacegroups: 225\nmax_structures: none\n"
                      "seed: 5\nno_project: true\nfigures: false\n"
                      f"output: {tmp_path / 'o'}\n")
    assert main(["run", "--config", str(config)]) == 0
    assert "structures in the training set; seed 5" in capsys.readouterr().out
    config.write_text("elements: [Cu\n")
    assert main(["run", "--config", str(config)]) == 2
    assert "is not valid YAML" in capsys.readouterr().err
    config.write_text("- just\n- a list\n")
    assert main(["run", "--config", str(config)]) == 2
    assert "must hold key: value pairs" in capsys.readouterr().err


def test_every_run_option_is_a_settings_key() -> None:
    from assyst_nodes.cli.settings import RUN_KEYS

    run = build_parser()._subparsers._group_actions[0].choices["run"]
    dests = {action.dest for action in run._actions} - {"help", "config", "write_config",
                                                          "verbose"}
    assert dests == set(RUN_KEYS) - {"executors"}  # per-stage sections: settings files only
    assert any("[executors.relax]" in (group.title or "") for group in run._action_groups)


@pytest.mark.parametrize("where", ["--no-project", "--project"])
def test_cli_time_limits_reach_the_stages_and_show_as_drops(
    where: str, capsys: pytest.CaptureFixture[str], tmp_path
) -> None:
    target = [where] if where == "--no-project" else [where, str(tmp_path / "p")]
    args = [*CLI_TINY, *target, "--output", str(tmp_path / "o"), "--time-limit", "1e-6"]
    assert main(args) == 0
    out = capsys.readouterr().out
    volume = next(line for line in out.splitlines() if line.startswith("volume_relax"))
    assert "time_limit: 2" in volume  # both sampled crystals ran out of time
    # a new project: in the same one, the grid points drawn above are read, not drawn
    target = [where] if where == "--no-project" else [where, str(tmp_path / "p2")]
    assert main([*CLI_TINY, *target, "--output", str(tmp_path / "o2"),
                 "--sample-time-limit", "1e-6"]) == 0
    sample = next(line for line in capsys.readouterr().out.splitlines()
                  if line.startswith("sample"))
    assert "time_limit" in sample


def test_cli_records_into_the_users_pyiron_database_or_the_embedded_one_when_asked(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a pyiron configuration (here PYIRON* variables naming a SQLite file) the jobs go to
    the configured database by default; ``--database embedded`` keeps them in the folder."""
    central = tmp_path / "central.db"
    monkeypatch.setenv("PYIRONSQLFILE", str(central))
    shared, local = tmp_path / "shared", tmp_path / "local"
    assert main([*CLI_TINY, "--project", str(shared)]) == 0
    assert "(user database): 8 jobs" in capsys.readouterr().out
    assert central.is_file() and not (shared / "pyiron.db").exists()
    assert main([*CLI_TINY, "--project", str(local), "--database", "embedded"]) == 0
    assert "(embedded database): 8 jobs" in capsys.readouterr().out
    assert (local / "pyiron.db").is_file()
    assert main(["jobs", str(shared)]) == 0
    assert capsys.readouterr().out.count("Assyst") == 8
    assert main(["jobs", str(local), "--database", "embedded"]) == 0
    assert capsys.readouterr().out.count("Assyst") == 8
    assert main(["jobs", str(shared), "--database", "embedded"]) == 2  # nothing embedded there
    assert "no embedded pyiron.db" in capsys.readouterr().err
    # the embedded project keeps its database although a configuration exists, and asking
    # for the configured one there says how to move the jobs
    assert main(["jobs", str(local)]) == 0
    assert capsys.readouterr().out.count("Assyst") == 8
    assert main(["jobs", str(local), "--database", "user"]) == 2
    error = capsys.readouterr().err
    assert "embedded database" in error and "pack" in error and "unpack" in error
    assert main([*CLI_TINY, "--project", str(local), "--database", "user"]) == 2
    assert "always opened on it" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["run", "--database", "central"])
    assert "invalid choice: 'central'" in capsys.readouterr().err


def test_cli_labels_the_training_set_and_exports_it_for_fitting_codes(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    import pandas as pd
    from ase.io import read

    folder = tmp_path / "proj"
    assert main([*CLI_TINY, "--project", str(folder), "--label", "emt"]) == 0
    out = capsys.readouterr().out
    training = read(folder / "training_set.extxyz", index=":")
    labelled = read(folder / "training_set_labelled.extxyz", index=":")
    n = len(labelled)  # the distinct structures and one isolated atom per element
    assert f"isolated atoms included: {n} structures written to" in out
    isolated = [a for a in labelled if a.info["config_type"] == "IsolatedAtom"]
    assert [a.get_chemical_formula() for a in isolated] == ["Cu"]
    kept = len(labelled) - len(isolated)
    assert kept + sum(len(a.info.get("duplicates", "").split()) for a in labelled) == len(
        training
    )
    assert all("REF_energy" in a.info and a.info["config_weight"] == 1.0 for a in labelled)
    assert all(a.arrays["REF_forces"].shape == (len(a), 3) for a in labelled)
    assert main(["export", str(folder), str(tmp_path / "ref.extxyz"),
                 "--labels-prefix", "DFT_"]) == 0
    assert f"{n} structures written" in capsys.readouterr().out
    assert all("DFT_energy" in a.info for a in read(tmp_path / "ref.extxyz", index=":"))
    assert main(["export", str(folder), str(tmp_path / "ace.pkl.gzip"), "--pacemaker",
                 "--reference-energy", "Cu=-0.25"]) == 0
    assert "reference energies (eV per isolated atom): {Cu: -0.25}" in capsys.readouterr().out
    table = pd.read_pickle(tmp_path / "ace.pkl.gzip", compression="gzip")
    assert len(table) == kept  # isolated atoms are reference energies, not rows
    natoms = table["ase_atoms"].map(len)
    assert np.allclose(table["energy_corrected"], table["energy"] + 0.25 * natoms)
    assert main(["export", str(folder), str(tmp_path / "own.pkl.gzip"), "--pacemaker"]) == 0
    own = pd.read_pickle(tmp_path / "own.pkl.gzip", compression="gzip")
    e0 = float(isolated[0].info["REF_energy"])
    assert np.allclose(own["energy_corrected"], own["energy"] - e0 * natoms)
    assert f"{{Cu: {e0!r}}}" in capsys.readouterr().out
    assert main(["export", str(folder), str(tmp_path / "x.pkl.gzip"), "--stage", "filter",
                 "--pacemaker"]) == 2
    assert "no reference energy (eV per isolated atom) for ['Cu']" in capsys.readouterr().err
    # the training set itself has no labels of the reference: none is written under a prefix
    assert main(["export", str(folder), str(tmp_path / "none.extxyz"), "--stage", "sample",
                 "--labels-prefix", "REF_"]) == 0
    assert "0 structures written" in capsys.readouterr().out


@pytest.mark.parametrize("calculator", ["emt", "lj"])
def test_cli_run_relaxes_with_the_chosen_calculator(calculator: str, tmp_path: Path) -> None:
    from ase.calculators.emt import EMT as AseEMT
    from ase.calculators.lj import LennardJones as AseLJ
    from ase.io import read

    args = ["run", "--elements", "Cu", "--max-atoms", "2", "--spacegroups", "229",
            "--max-structures", "2", "--no-project", "--no-figures", "--output", str(tmp_path),
            "--calculator", calculator, "--max-steps", "5"]
    assert main(args) == 0
    labelled = [a for a in read(tmp_path / "training_set.extxyz", index=":")
                if a.calc is not None and "energy" in a.calc.results]
    assert labelled
    for atoms in labelled:
        direct = atoms.copy()
        direct.calc = AseEMT() if calculator == "emt" else AseLJ(sigma=2.3, epsilon=0.1)
        expected = direct.get_potential_energy()
        assert atoms.get_potential_energy() == pytest.approx(expected, abs=1e-6)


def test_cli_run_with_two_workers_writes_what_one_worker_writes(
    capsys: pytest.CaptureFixture[str], tmp_path
) -> None:
    """``--workers 2`` fans sampling and relaxation out over two processes: the same training
    set, bit for bit (the extxyz files are equal byte for byte), and the same stage table."""
    tables = []
    for workers in ("1", "2"):
        folder = tmp_path / f"workers_{workers}"
        args = [*CLI_TINY, "--no-project", "--output", str(folder), "--workers", workers]
        assert main(args) == 0
        out = capsys.readouterr().out
        tables.append([line.split()[:3] for line in out.splitlines() if line[:1].isalpha()
                       and "training set" not in line and "written" not in line])
    one = (tmp_path / "workers_1" / "training_set.extxyz").read_bytes()
    two = (tmp_path / "workers_2" / "training_set.extxyz").read_bytes()
    assert one.count(b"Lattice=") >= 6 and two == one
    assert tables[0] == tables[1] and any(row[:1] == ["full_relax"] for row in tables[0])


def test_export_options_for_fitting_codes_name_their_bad_values(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    folder = tmp_path / "proj"
    assert main([*CLI_TINY, "--project", str(folder), "--label", "emt"]) == 0
    capsys.readouterr()
    out = str(tmp_path / "set.extxyz")
    cases = [
        (["--labels-prefix", "REF_", "--split", "0.8", "0.3", "0.1"],
         "Split fractions must sum to 1, got train=0.8 + validation=0.3 + test=0.1"),
        (["--labels-prefix", "REF_", "--weight", "sampled=-1"],
         "weights must look like 'sampled=0.5 perturbed=1' (origin=weight >= 0), got 'sampled=-1'"),
        (["--labels-prefix", "REF_", "--max-force", "0"],
         "expected a number > 0 or 'none', got '0'"),
        (["--split", "0.8", "0.1", "0.1"], "--split needs --labels-prefix or --pacemaker"),
        (["--labels-prefix", "REF_", "--energy", "total"], "invalid choice: 'total'"),
    ]
    for extra, message in cases:
        with contextlib.suppress(SystemExit):
            assert main(["export", str(folder), out, *extra]) == 2
        assert message in capsys.readouterr().err, extra
    assert not list(tmp_path.glob("set*"))  # nothing written
    assert main(["export", str(folder), out, "--labels-prefix", "REF_", "--max-force", "none",
                 "--max-energy", "none", "--weight", "perturbed=2"]) == 0
    frames = read(out, index=":")
    assert {a.info["config_weight"] for a in frames if a.info["config_type"] == "perturbed"} == {
        2.0
    }
