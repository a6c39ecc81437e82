"""The ``assyst-nodes`` command (also ``python -m assyst_nodes``).

``assyst-nodes run`` runs the canonical ASSYST pipeline on the embedded default (Cu-Ag, ASE's
EMT) into a project folder (an SQLite pyiron job table, one job per stage run, reused on rerun),
prints a table of what each stage made and dropped, and writes the training set as extxyz.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .pipeline import PipelineResult

__all__ = ["main"]


def _spacegroups(text: str) -> list[int]:
    """``"1-10,221,225"`` -> ``[1, ..., 10, 221, 225]``."""
    groups: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        low, sep, high = part.partition("-")
        try:
            groups.extend(range(int(low), int(high) + 1) if sep else [int(low)])
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"space groups must look like '1-10,225', got {text!r}"
            ) from None
    return groups


def _parser(run_defaults: dict | None = None) -> argparse.ArgumentParser:
    """The command-line parser; ``run_defaults`` (from ``--config``) replace run's defaults."""
    parser = argparse.ArgumentParser(
        prog="assyst-nodes",
        description="Build ASSYST training sets for machine-learning interatomic potentials.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser(
        "run", help="run sample -> relax -> perturb -> filter and print a per-stage table"
    )
    run.add_argument("--elements", nargs="+", default=["Cu", "Ag"], help="default: Cu Ag")
    run.add_argument("--max-atoms", type=int, default=4, help="atoms per cell at most (4)")
    run.add_argument("--min-atoms", type=int, default=1, help="atoms per cell at least (1)")
    run.add_argument(
        "--spacegroups", type=_spacegroups, default=None, help="e.g. '1-10,225' (default: all)"
    )
    run.add_argument(
        "--max-structures", type=int, default=30, help="sampled crystals at most (30)"
    )
    run.add_argument("--seed", type=int, default=0, help="base seed of every random choice (0)")
    run.add_argument("--workers", type=int, default=1, help="processes for relaxation (1)")
    run.add_argument(
        "--project",
        default="assyst_project",
        help="project folder (SQLite job table, one job per stage run; reruns reuse finished "
        "jobs) (assyst_project)",
    )
    run.add_argument(
        "--no-project", action="store_true", help="run in memory, store nothing"
    )
    run.add_argument(
        "--config",
        help="TOML file of run settings (keys: the option names above with '_' for '-', e.g. "
        "max_atoms = 4, spacegroups = [221, 225] or \"1-10,225\"); options given on the "
        "command line win",
    )
    run.add_argument("-v", "--verbose", action="store_true", help="log what each stage drops")

    jobs = commands.add_parser("jobs", help="print the job table of a project")
    jobs.add_argument("project", help="project folder")

    history = commands.add_parser("history", help="print the chain of a structure, seed first")
    history.add_argument("project", help="project folder")
    history.add_argument("uuid", help="uuid of a stored structure")

    export = commands.add_parser(
        "export", help="write stored structures as extxyz (.xyz/.extxyz) or a table (.pkl)"
    )
    export.add_argument("project", help="project folder")
    export.add_argument("output", help="file to write: *.extxyz, *.xyz, *.pkl or *.parquet")
    export.add_argument(
        "--stage", default="filter", help="stage whose output to write (filter: the training set)"
    )
    export.add_argument("--step", default=None, help="only structures of this step")
    if run_defaults:
        run.set_defaults(**run_defaults)
    return parser


RUN_KEYS = ("elements", "max_atoms", "min_atoms", "spacegroups", "max_structures", "seed",
            "workers", "project", "no_project")
"""Settings a ``--config`` TOML file may hold."""


def _config_defaults(path: str) -> dict:
    """The run settings of the TOML file ``path``, checked against :data:`RUN_KEYS`."""
    import tomllib

    try:
        with open(path, "rb") as handle:
            values = tomllib.load(handle)
    except OSError as error:
        raise ValueError(f"cannot read config file {path!r}: {error}") from None
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"config file {path!r} is not valid TOML: {error}") from None
    unknown = sorted(set(values) - set(RUN_KEYS))
    if unknown:
        raise ValueError(f"config file {path!r}: unknown keys {unknown}; valid: {list(RUN_KEYS)}")
    if isinstance(values.get("spacegroups"), str):
        values["spacegroups"] = _spacegroups(values["spacegroups"])
    if isinstance(values.get("elements"), str):
        values["elements"] = values["elements"].split()
    return values


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if getattr(args, "verbose", False) else logging.WARNING)
    try:
        if args.command == "jobs":
            return _jobs(args.project)
        if args.command == "history":
            return _history(args.project, args.uuid)
        if args.command == "export":
            return _export(args.project, args.output, args.stage, args.step)
        if args.config is not None:
            args = _parser(_config_defaults(args.config)).parse_args(argv)
    except (ValueError, KeyError, FileNotFoundError, ImportError) as error:
        message = error.args[0] if isinstance(error, KeyError) else error
        print(f"assyst-nodes: error: {message}", file=sys.stderr)
        return 2
    settings = {
        "elements": tuple(args.elements),
        "max_atoms": args.max_atoms,
        "min_atoms": args.min_atoms,
        "spacegroups": args.spacegroups,
        "max_structures": args.max_structures,
        "workers": args.workers,
    }
    try:
        if args.no_project:
            from .pipeline import run_pipeline

            result = run_pipeline(**settings, rng=args.seed)
        else:
            result = _run_into_project(args.project, settings, args.seed)
    except (ValueError, TypeError, ImportError, PermissionError) as error:
        print(f"assyst-nodes: error: {error}", file=sys.stderr)
        return 2
    print(result.table())
    if not args.no_project:
        _print_project_summary(args.project, result)
    return 0


def _existing_project(folder: str) -> str:
    """``folder`` if it holds a project, else ``FileNotFoundError`` naming it."""
    from pathlib import Path

    if not (Path(folder) / "pyiron.db").is_file():
        raise FileNotFoundError(
            f"no project in {folder!r} (no pyiron.db); create one with assyst-nodes run "
            f"--project {folder}"
        )
    return folder


def _jobs(folder: str) -> int:
    """Print the job table of the project in ``folder``."""
    import pandas as pd

    from .project import open_project

    table = open_project(_existing_project(folder)).job_table()
    columns = [c for c in ("id", "status", "hamilton", "job", "parentid", "masterid",
                           "timestart", "totalcputime") if c in table.columns]
    with pd.option_context("display.width", 200, "display.max_rows", None):
        print(table[columns].to_string(index=False))
    return 0


def _history(folder: str, uuid: str) -> int:
    """Print the chain of structure ``uuid``: step, uuid, job id, formula, energy/atom (eV)."""
    from .project import history

    for link in history(_existing_project(folder), uuid):
        atoms = link.structure
        calc = atoms.calc
        energy = calc.results.get("energy") if calc is not None else None
        per_atom = f"{energy / len(atoms):.4f} eV/atom" if energy is not None else "-"
        print(f"{link.step!s:<48} {link.uuid}  job {link.job_id:<5} "
              f"{atoms.get_chemical_formula():<10} {per_atom}")
    return 0


def _export(folder: str, output: str, stage: str | None, step: str | None) -> int:
    """Write the stored structures of ``stage`` (and ``step``) to ``output``."""
    from pathlib import Path

    from .project import export_extxyz, export_table, structures

    found = structures(_existing_project(folder), stage=stage or None, step=step)
    if Path(output).suffix in {".xyz", ".extxyz"}:
        export_extxyz(found, output)
    else:
        export_table(found, output)
    print(f"{len(found)} structures written to {output}")
    return 0


def _run_into_project(folder: str, settings: dict, seed: int) -> PipelineResult:
    """The ASSYST macro with every stage run recorded as a job in the project at ``folder``."""
    import time

    import pyiron_workflow as pwf

    from .nodes import assyst
    from .pipeline import PipelineResult
    from .project import ProjectRecorder

    start = time.perf_counter()
    recorder = ProjectRecorder(folder, pipeline=f"assyst-nodes run (seed {seed})")
    out = pwf.run(assyst, **settings, seed=seed, recorder=recorder).outputs
    stages = {
        name: getattr(out, name)
        for name in ("sampled", "volume_relaxed", "full_relaxed", "perturbed", "combined")
    }
    return PipelineResult(
        structures=out.training_set,
        stages={**stages, "filtered": out.training_set},
        reports=list(out.reports),
        seed=seed,
        seconds=time.perf_counter() - start,
    )


def _print_project_summary(folder: str, result: PipelineResult) -> None:
    """Where the run is stored: the job table in brief and the exported training set."""
    from pathlib import Path

    from .project import export_extxyz, open_project

    table = open_project(folder).job_table()
    path = export_extxyz(result.structures, Path(folder) / "training_set.extxyz")
    counts = table["hamilton"].value_counts().to_dict()
    jobs = ", ".join(f"{name} {n}" for name, n in sorted(counts.items()))
    print(f"project {Path(folder).resolve()}: {len(table)} jobs ({jobs})")
    print(f"training set written to {path}")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
