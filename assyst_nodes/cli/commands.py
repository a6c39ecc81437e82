"""What the subcommands of ``assyst-nodes`` do: ``run`` (the canonical run through
:func:`~assyst_nodes.pipeline.run_pipeline`, its table and outputs), ``jobs``, ``history`` and
``export``. The node and project layers are imported only by the commands that use them."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .settings import EXECUTOR_STAGES, RunSettings, use_user_config

if TYPE_CHECKING:
    from ..pipeline import PipelineResult

__all__ = ["existing_project", "export", "history", "jobs", "run", "warm_workers", "write_outputs"]


def warm_workers(settings: RunSettings) -> None:
    """Start the fork server of local worker processes early, if the run uses them.

    With local worker processes (``workers`` > 1 on the local executor, or a stage on local
    processes with more than one worker), the fork server starts now, importing the stages and
    the calculators' heavy modules (torch for SevenNet) in the background while this process
    imports pyiron: the workers then start with them (see
    :func:`~assyst_nodes.runtime.fanout.warm_workers`). Otherwise nothing happens.

    Parameters
    ----------
    settings : RunSettings
        The settings of the run (its executors, workers, calculator and label calculator).
    """
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
    """Open the pyiron project of ``folder`` for ``jobs``, ``history`` and ``export``.

    Parameters
    ----------
    folder : str
        The project folder.
    database : str
        Its job database: ``auto``, ``user`` or ``embedded`` (see
        :func:`~assyst_nodes.cli.settings.use_user_config`).

    Returns
    -------
    Project
        The pyiron project of ``folder`` in ``database``, if it holds one.

    Raises
    ------
    FileNotFoundError
        Naming the folder (and how to create a project there), if it is no folder, holds no
        embedded ``pyiron.db`` in it or above it (embedded database), or its job table has no
        jobs (its sub-projects counted).
    """
    from ..project.database import database_kind, embedded_root
    from ..project.operations import open_project

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
    """Print the job table of ``project`` (with its sub-projects).

    Parameters
    ----------
    project : Project
        The pyiron project (e.g. of :func:`existing_project`).

    Returns
    -------
    int
        The exit code, 0.
    """
    import pandas as pd

    table = project.job_table(recursive=True)
    columns = [c for c in ("id", "status", "chemicalformula", "hamilton", "job", "project",
                           "parentid", "masterid", "timestart", "totalcputime")
               if c in table.columns]
    with pd.option_context("display.width", 200, "display.max_rows", None):
        print(table[columns].to_string(index=False))
    return 0


def history(project: Any, uuid: str) -> int:
    """Print the chain of structure ``uuid``, seed first.

    One line per link: step, uuid, job id, formula, energy per atom (eV/atom; ``-`` where a
    structure has none).

    Parameters
    ----------
    project : Project
        The pyiron project (e.g. of :func:`existing_project`).
    uuid : str
        The uuid of a stored structure (see :func:`assyst_nodes.project.queries.history`).

    Returns
    -------
    int
        The exit code, 0.
    """
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
    """Write the stored structures of ``args.stage`` (and ``args.step``) to ``args.output``.

    The file is pacemaker's table (``args.pacemaker``), extxyz with labels under a prefix
    (``args.labels_prefix``), both optionally split by family into three files
    (``args.split``), extxyz (suffix ``.xyz`` or ``.extxyz``) or a table; what was written is
    printed, with the structures left out and the reference energies used. The format is
    checked against the file name first (:func:`~assyst_nodes.project.export.export_format`).

    Parameters
    ----------
    project : Project
        The pyiron project (e.g. of :func:`existing_project`).
    args : argparse.Namespace
        The parsed arguments of ``assyst-nodes export``: ``output``, ``stage``, ``step``,
        ``pacemaker``, ``labels_prefix``, ``reference_energy`` (eV per atom of each element),
        ``energy``, ``split``, ``split_seed`` and the weights (``weight``, ``high_energy``,
        ``high_force``, ``high_weight``, ``max_energy``, ``max_force``).

    Returns
    -------
    int
        The exit code, 0.

    Raises
    ------
    ValueError
        A file name that does not fit the format (the message names both and what would fit).
    """
    from ..io.fitting import write_labelled_extxyz, write_pacemaker, write_split
    from ..project import export_extxyz, export_table, structures
    from ..project.export import export_format
    from ..stages.split import Split
    from ..stages.weights import Weights

    output = args.output
    fmt = export_format(output, labels=args.labels_prefix is not None, pacemaker=args.pacemaker)
    labelled_format = fmt in {"pacemaker", "labelled_extxyz"}
    if args.split is not None and not labelled_format:
        raise ValueError("--split needs --labels-prefix or --pacemaker (labelled structures)")
    stage = args.stage or ("label" if labelled_format else "filter")
    found = structures(project, stage=stage, step=args.step)
    if not labelled_format:
        if fmt == "extxyz":
            export_extxyz(found, output)
        else:
            export_table(found, output)
        print(f"{len(found)} structures written to {output}")
        return 0
    weights = Weights(
        origins=dict(args.weight),
        high_energy=args.high_energy,
        high_force=args.high_force,
        high_weight=args.high_weight,
        max_energy=args.max_energy,
        max_force=args.max_force,
    )
    references = dict(args.reference_energy) or None
    options: dict[str, Any] = {"energy": args.energy, "weights": weights}
    if args.split is not None:
        train, validation, test = args.split
        written = write_split(
            found, output, Split(train, validation, test, args.split_seed),
            pacemaker=fmt == "pacemaker", prefix=args.labels_prefix or "REF_",
            reference_energies=references, **options,
        )
        for part, result in written.items():
            print(f"{part}: {result.summary()}")
        references = next(iter(written.values())).reference_energies
    else:
        if fmt == "pacemaker":
            result = write_pacemaker(found, output, references, **options)
        else:
            result = write_labelled_extxyz(found, output, prefix=args.labels_prefix, **options)
        print(result.summary())
        references = result.reference_energies
    if references:
        shown = ", ".join(f"{element}: {value!r}" for element, value in references.items())
        print(f"reference energies (eV per isolated atom): {{{shown}}}")
    return 0


def fit(project: Any, args: argparse.Namespace) -> int:
    """Fit a potential to the project's labels as a fit job (reused when nothing changed).

    Parameters
    ----------
    project : Project
        The pyiron project (e.g. of :func:`existing_project`).
    args : argparse.Namespace
        The parsed arguments of ``assyst-nodes fit``: ``code`` (a name of
        :data:`~assyst_nodes.cli.settings.FIT_CODES`), ``split`` (three fractions),
        ``split_seed``, ``weighting`` and ``energy``.

    Returns
    -------
    int
        The exit code: 0, or 2 without labels.
    """
    import dataclasses

    from ..project import fit_in_project, structures
    from ..stages.split import Split, split
    from .settings import FIT_CODES

    labelled = structures(project, stage="label")
    if not labelled:
        print(
            "assyst-nodes: error: the project has no labels: run with --label first",
            file=sys.stderr,
        )
        return 2
    settings = dataclasses.replace(FIT_CODES[args.code], energy=args.energy)
    if hasattr(settings, "weighting"):
        settings = dataclasses.replace(settings, weighting=args.weighting)
    parts = split(labelled, Split(*args.split, seed=args.split_seed))
    result = fit_in_project(project, parts["train"], settings, validation=parts["validation"])
    print(result.summary())
    print(f"potential: {result.files[0]}")
    return 0


def validation_line(validation: Any) -> str:
    """The headline numbers of a validation on one line.

    Parameters
    ----------
    validation : Validation
        A validation (:class:`~assyst_nodes.stages.validate.Validation`).

    Returns
    -------
    str
        Energy (meV/atom) and force (meV/Å) RMSE near and in transfer, then the mean absolute
        property errors (V0 Å^3/atom, B0 and C_ij GPa, phonons THz, vacancy eV).
    """
    s = validation.summary()
    head = (
        f"energy RMSE near {s['energy_rmse_near']:.3g}, transfer {s['energy_rmse_transfer']:.3g}"
        f" meV/atom; force RMSE near {s['force_rmse_near']:.3g}, transfer "
        f"{s['force_rmse_transfer']:.3g} meV/Å"
    )
    properties = ", ".join(
        f"{key[4:]} {value:.3g}" for key, value in s.items() if key.startswith("mae_")
    )
    return f"{head}; mean absolute errors: {properties}" + (
        f"; {s['failed']} failed" if s["failed"] else ""
    )


def _label_calculator(project: Any) -> Any:
    """The calculator of the project's label jobs (one, else a ``ValueError`` naming them)."""
    table = project.job_table(recursive=True)
    found = {}
    for name in table.loc[table["hamilton"] == "AssystLabel", "job"]:
        calculator = project.load(name).settings_object().get("calculator")
        found[str(calculator)] = calculator
    if len(found) != 1:
        raise ValueError(
            f"the project's label jobs used {sorted(found) or 'no calculator'}: name the "
            "reference with --reference"
        )
    return next(iter(found.values()))


def validate(project: Any, args: argparse.Namespace) -> int:
    """Validate a fit job's potential against the reference on the held-out suite of its
    elements, as a validation job (reused when nothing changed); print its errors.

    Parameters
    ----------
    project : Project
        The pyiron project (e.g. of :func:`existing_project`).
    args : argparse.Namespace
        The parsed arguments of ``assyst-nodes validate``: ``fit_job`` (default: the newest
        fit job), ``reference`` and ``reference_kwargs`` (default: the label jobs'
        calculator), ``figures`` (a folder for the figures, or None).

    Returns
    -------
    int
        The exit code: 0, or 2 without a fit job.
    """
    from ..project import fit_result_of, validate_in_project
    from ..stages.validate import Suite
    from .settings import calculator_from

    table = project.job_table(recursive=True)
    fits = table[table["hamilton"] == "AssystFit"].sort_values("id")
    name = args.fit_job or (str(fits["job"].iloc[-1]) if len(fits) else None)
    if name is None:
        print("assyst-nodes: error: the project has no fit job: run fit first", file=sys.stderr)
        return 2
    fitted = fit_result_of(name, project)
    reference = (
        _label_calculator(project)
        if args.reference is None
        else calculator_from(args.reference, args.reference_kwargs, "reference")
    )
    suite = Suite(tuple(sorted(fitted.reference_energies)))
    validation = validate_in_project(project, fitted.potential, reference, suite)
    print(f"validation of {fitted.potential} (fit job {name}) against {reference}:")
    errors = validation.errors.set_index("group")
    print(errors[["structures", "failed", "energy_rmse", "force_rmse"]].to_string())
    print(validation_line(validation))
    if args.figures is not None:
        from ..plot.validation import save_validation_figures

        written = save_validation_figures(validation, Path(args.figures))
        print(f"{len(written)} figures written to {args.figures}")
    return 0


def run(settings: RunSettings) -> PipelineResult:
    """Run the canonical pipeline (:func:`~assyst_nodes.pipeline.run_pipeline`) with ``settings``.

    Parameters
    ----------
    settings : RunSettings
        The settings of the run. Every stage run is recorded as a job in its ``project``
        (in its ``database``); with ``no_project`` the run is in memory.

    Returns
    -------
    PipelineResult
        The training set, each intermediate set and each stage's report.

    Notes
    -----
    A project folder that cannot be used (its database, its rights) fails before any work
    starts: the project is opened first.
    """
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
    """Write the outputs of a run and print where they and the run are stored.

    Into :meth:`RunSettings.output_folder <assyst_nodes.cli.settings.RunSettings.output_folder>`
    go the training set (``training_set.extxyz``), with a label calculator the labelled set
    (``training_set_labelled.extxyz``, labels under ``REF_`` keys) and, with ``figures``, the
    figures (``figures/``); with a project, its folder, database and job counts are printed.

    Parameters
    ----------
    settings : RunSettings
        The settings of the run.
    result : PipelineResult
        What :func:`run` returned.
    """
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
        written = write_labelled_extxyz(labelled, folder / "training_set_labelled.extxyz")
        print(f"labels under REF_ keys, isolated atoms included: {written.summary()}")
    if result.fit is not None:
        print(f"fitted: {result.fit.summary()}")
    if result.validation is not None:
        print(f"validation against {settings.label}: {validation_line(result.validation)}")
    if settings.figures:
        from ..plot import save_figures

        written = save_figures(result.stages["combined"], folder / "figures", result.reports)
        if result.validation is not None:
            from ..plot.validation import save_validation_figures

            written += save_validation_figures(result.validation, folder / "figures" / "validation")
        print(f"{len(written)} figures written to {folder / 'figures'}")


