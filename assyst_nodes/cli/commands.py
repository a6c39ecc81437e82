"""What the subcommands of ``assyst-nodes`` do: ``run`` (the canonical run through
:func:`~assyst_nodes.pipeline.run_pipeline`, its table and outputs), ``jobs``, ``history`` and
``export``. The node and project layers are imported only by the commands that use them."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .settings import EXECUTOR_STAGES, RunSettings, use_user_config

if TYPE_CHECKING:
    from ..pipeline import PipelineResult

__all__ = ["existing_project", "export", "history", "jobs", "run", "warm_workers", "write_outputs"]


def warm_workers(settings: RunSettings) -> None:
    """With local worker processes, start the fork server now, importing the stages and the
    calculators' heavy modules (torch for SevenNet) in the background while this process
    imports pyiron: the workers then start with them (see
    :func:`~assyst_nodes.runtime.fanout.warm_workers`)."""
    from ..runtime import fanout
    from ..runtime.executors import LocalProcesses

    executors = [settings.executor_for(stage) for stage in (None, *EXECUTOR_STAGES)]
    local = settings.workers > 1 and any(e is None for e in executors)
    if not local and not any(
        isinstance(e, LocalProcesses) and e.workers > 1 for e in executors
    ):
        return
    configs = [settings.calculator_config(), settings.label_config()]
    fanout.warm_workers(m for config in configs if config is not None for m in config.modules())


def existing_project(folder: str, database: str) -> Any:
    """The pyiron project of ``folder`` in ``database`` (auto, user, embedded), if it holds
    one; else ``FileNotFoundError`` naming it."""
    from ..project.database import database_kind, embedded_root, open_project

    use = use_user_config(database)
    hint = f"create one with assyst-nodes run --project {folder}"
    if not Path(folder).is_dir():
        raise FileNotFoundError(f"no project in {folder!r}: no such folder; {hint}")
    if database_kind(use) == "embedded" and embedded_root(folder) is None:
        raise FileNotFoundError(
            f"no project in {folder!r} (no embedded pyiron.db in it or above it); {hint}"
        )
    project = open_project(folder, use)
    if project.job_table(recursive=True).empty:
        raise FileNotFoundError(
            f"no jobs in {folder!r} (database: {project.database_kind}); {hint}"
        )
    return project


def jobs(project: Any) -> int:
    """Print the job table of ``project`` (with its sub-projects)."""
    import pandas as pd

    table = project.job_table(recursive=True)
    columns = [c for c in ("id", "status", "chemicalformula", "hamilton", "job", "project",
                           "parentid", "masterid", "timestart", "totalcputime")
               if c in table.columns]
    with pd.option_context("display.width", 200, "display.max_rows", None):
        print(table[columns].to_string(index=False))
    return 0


def history(project: Any, uuid: str) -> int:
    """Print the chain of structure ``uuid``: step, uuid, job id, formula, energy/atom (eV)."""
    from ..project import queries

    for link in queries.history(project, uuid):
        atoms = link.structure
        calc = atoms.calc
        energy = calc.results.get("energy") if calc is not None else None
        per_atom = f"{energy / len(atoms):.4f} eV/atom" if energy is not None else "-"
        print(f"{link.step!s:<48} {link.uuid}  job {link.job_id:<5} "
              f"{atoms.get_chemical_formula():<10} {per_atom}")
    return 0


def export(project: Any, args: argparse.Namespace) -> int:
    """Write the stored structures of ``args.stage`` (and ``args.step``) to ``args.output``:
    extxyz, a table, extxyz with labels under a prefix, or pacemaker's table."""
    from ..io.fitting import write_labelled_extxyz, write_pacemaker
    from ..project import export_extxyz, export_table, structures

    output = args.output
    found = structures(project, stage=args.stage or None, step=args.step)
    left_out = 0
    if args.pacemaker:
        _, left_out = write_pacemaker(found, output, dict(args.reference_energy))
    elif args.labels_prefix is not None:
        _, left_out = write_labelled_extxyz(found, output, prefix=args.labels_prefix)
    elif Path(output).suffix in {".xyz", ".extxyz"}:
        export_extxyz(found, output)
    else:
        export_table(found, output)
    unlabelled = f" ({left_out} without labels left out)" if left_out else ""
    print(f"{len(found) - left_out} structures written to {output}{unlabelled}")
    return 0


def run(settings: RunSettings) -> PipelineResult:
    """The canonical run (:func:`~assyst_nodes.pipeline.run_pipeline`) with the settings,
    every stage run recorded as a job in the settings' project (``no_project``: in memory)."""
    from ..pipeline import run_pipeline

    recorder = None
    if not settings.no_project:
        from ..project import ProjectRecorder

        recorder = ProjectRecorder(
            settings.project,
            pipeline=f"assyst-nodes run (seed {settings.seed})",
            use_user_config=use_user_config(settings.database),
        )
        recorder.project()  # a folder that cannot be used (its database, its rights) fails now
    return run_pipeline(**settings.pipeline_arguments(), recorder=recorder)


def write_outputs(settings: RunSettings, result: PipelineResult) -> None:
    """The training set (extxyz), the figures, and where the run is stored."""
    from ..io.extxyz import write_extxyz

    folder = settings.output_folder()
    folder.mkdir(parents=True, exist_ok=True)
    if not settings.no_project:
        from ..project import open_project

        project = open_project(settings.project, use_user_config(settings.database))
        table = project.job_table()
        counts = table["hamilton"].value_counts().to_dict()
        jobs = ", ".join(f"{name} {n}" for name, n in sorted(counts.items()))
        print(
            f"project {Path(settings.project).resolve()} ({project.database_kind} database): "
            f"{len(table)} jobs ({jobs})"
        )
    path = write_extxyz(result.structures, folder / "training_set.extxyz")
    print(f"training set ({len(result.structures)} structures) written to {path}")
    if settings.label is not None:
        from ..io.fitting import write_labelled_extxyz

        labelled = result.stages.get("labelled", [])
        path, left_out = write_labelled_extxyz(labelled, folder / "training_set_labelled.extxyz")
        print(
            f"labels ({len(labelled) - left_out} structures, labels under REF_ keys; "
            f"{len(result.structures) - len(labelled) + left_out} without a label) written to "
            f"{path}"
        )
    if settings.figures:
        from ..plot import save_figures

        written = save_figures(result.stages["combined"], folder / "figures", result.reports)
        print(f"{len(written)} figures written to {folder / 'figures'}")


