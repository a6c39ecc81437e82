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


def _parser() -> argparse.ArgumentParser:
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
    run.add_argument("-v", "--verbose", action="store_true", help="log what each stage drops")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING)
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
