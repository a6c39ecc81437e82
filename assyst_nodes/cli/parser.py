"""The parser of the ``assyst-nodes`` command: its subcommands, options and their defaults
(from :class:`~assyst_nodes.cli.settings.RunSettings`, whose defaults come from
:mod:`assyst_nodes.defaults`), and the parsed arguments as run settings."""

from __future__ import annotations

import argparse
import json
import math
from typing import Any

from ..runtime.executors import EXECUTOR_KINDS
from ..stages.split import Split
from ..stages.weights import ENERGIES, Weights
from .settings import (
    BUILTIN_CALCULATORS,
    DATABASES,
    FIT_CODES,
    RELAXATIONS,
    RUN_KEYS,
    RunSettings,
    parse_spacegroups,
)

__all__ = ["build_parser", "settings_of"]


def _spacegroups(text: str) -> list[int]:
    """``"1-10,221,225"`` -> ``[1, ..., 10, 221, 225]``."""
    try:
        return parse_spacegroups(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _cap(text: str) -> int | None:
    """A number, or ``none``/``all`` for no cap."""
    if text.strip().lower() in {"none", "all"}:
        return None
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a whole number or 'none' (no cap), got {text!r}"
        ) from None


def _radii(text: str) -> float | tuple[str, float]:
    """``"0.9"`` (every element) or ``"Cu=0.9"`` (one element), radii in Å."""
    symbol, sep, value = text.rpartition("=")
    try:
        radius = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"radii must look like 'Cu=0.9 Ag=1.0' or '0.9' (Å), got {text!r}"
        ) from None
    return (symbol.strip(), radius) if sep else radius


def _name_number(text: str, looks: str, at_least: float = -math.inf) -> tuple[str, float]:
    """``"NAME=NUMBER"`` as ``(name, number)``, the number finite and >= ``at_least``; else an
    argparse error saying how it ``looks``."""
    name, sep, value = text.rpartition("=")
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not sep or not name.strip() or not math.isfinite(number) or not number >= at_least:
        raise argparse.ArgumentTypeError(f"{looks}, got {text!r}")
    return name.strip(), number


def _element_energy(text: str) -> tuple[str, float]:
    """``"Cu=-3.7"``: a reference energy (eV per atom) of one element."""
    return _name_number(text, "reference energies must look like 'Cu=-3.7 Ag=-2.8' (eV per atom)")


def _mapping(text: str) -> dict:
    """A JSON object, e.g. ``'{"sigma": 2.3}'``."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        value = None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(
            f"expected a JSON object like '{{\"sigma\": 2.3}}', got {text!r}"
        )
    return value


def _shown(value: Any) -> str:
    """A default as ``--help`` shows it: sequences space-separated, ``None`` as ``none``."""
    if value is None:
        return "none"
    if isinstance(value, list | tuple):
        return " ".join(_shown(item) for item in value)
    return str(value)


def _add_sampling(run: argparse.ArgumentParser, defaults: RunSettings) -> None:
    """The options of ``run`` on sampling: elements, atoms per cell, space groups, cap, time limit
    and seed; their defaults from ``defaults``."""
    sampling = run.add_argument_group("sampling")
    sampling.add_argument(
        "--elements", nargs="+", default=list(defaults.elements),
        help=f"elements ({_shown(defaults.elements)})"
    )
    sampling.add_argument(
        "--min-atoms", type=int, default=defaults.min_atoms,
        help=f"atoms per cell at least ({_shown(defaults.min_atoms)})"
    )
    sampling.add_argument(
        "--max-atoms", type=int, default=defaults.max_atoms,
        help=f"atoms per cell at most ({_shown(defaults.max_atoms)})"
    )
    sampling.add_argument(
        "--spacegroups", type=_spacegroups, default=None, help="e.g. '1-10,225' (default: all)"
    )
    sampling.add_argument(
        "--max-structures",
        type=_cap,
        default=defaults.max_structures,
        help=f"sampled crystals at most, or 'none' ({_shown(defaults.max_structures)})",
    )
    sampling.add_argument(
        "--sample-time-limit",
        type=float,
        default=None,
        metavar="SECONDS",
        help="wall-clock limit of pyxtal on one (formula, space group) point; a point past it "
        "is skipped and reported (default: none)",
    )
    sampling.add_argument(
        "--seed", type=int, default=defaults.seed,
        help=f"base seed of every random choice ({_shown(defaults.seed)})"
    )


def _add_relaxation(run: argparse.ArgumentParser, defaults: RunSettings) -> None:
    """The options of ``run`` on relaxation: calculator, second relaxation, pressure (GPa), force
    tolerance (eV/Å), steps, time limit, workers; their defaults from ``defaults``."""
    relaxation = run.add_argument_group("relaxation")
    relaxation.add_argument(
        "--calculator",
        default=defaults.calculator,
        help=f"{', '.join(BUILTIN_CALCULATORS)} or an import path such as "
        "'ase.calculators.lj:LennardJones' or 'mace.calculators:mace_mp' "
        f"({_shown(defaults.calculator)})",
    )
    relaxation.add_argument(
        "--calculator-kwargs",
        type=_mapping,
        default={},
        metavar="JSON",
        help="keyword arguments of the calculator as a JSON object, e.g. '{\"sigma\": 2.3}'",
    )
    relaxation.add_argument(
        "--relax",
        choices=sorted(RELAXATIONS),
        default=defaults.relax,
        help=f"second relaxation after the volume relaxation ({_shown(defaults.relax)})",
    )
    relaxation.add_argument(
        "--pressure",
        type=float,
        default=defaults.pressure,
        help="pressure in GPa of the volume relaxation and of --relax full or symmetry; "
        f"refused with --relax cell or positions, which relax at no pressure "
        f"({_shown(defaults.pressure)})",
    )
    relaxation.add_argument(
        "--fmax", type=float, default=defaults.fmax,
        help=f"force tolerance in eV/Å ({_shown(defaults.fmax)})"
    )
    relaxation.add_argument(
        "--max-steps", type=int, default=defaults.max_steps,
        help=f"optimiser steps at most ({_shown(defaults.max_steps)})"
    )
    relaxation.add_argument(
        "--time-limit",
        type=float,
        default=None,
        metavar="SECONDS",
        help="wall-clock limit of one structure's relaxation; a structure past it is dropped "
        "and reported (default: none)",
    )
    relaxation.add_argument(
        "--workers", type=int, default=defaults.workers,
        help=f"processes that sample and relax ({_shown(defaults.workers)})"
    )


def _add_perturbation(run: argparse.ArgumentParser, defaults: RunSettings) -> None:
    """The options of ``run`` on perturbation and filter: rattle (Å), strains, retries, radii (Å),
    aspect; their defaults from ``defaults``."""
    perturbation = run.add_argument_group("perturbation and filter")
    perturbation.add_argument(
        "--rattle", type=float, default=defaults.rattle,
        help=f"rattle σ in Å ({_shown(defaults.rattle)})"
    )
    perturbation.add_argument(
        "--strain",
        type=float,
        nargs=2,
        metavar=("HYDRO", "SHEAR"),
        default=list(defaults.strain),
        help=f"small strain under the rattle, fractions ({_shown(defaults.strain)})",
    )
    perturbation.add_argument(
        "--large-strain",
        type=float,
        nargs=2,
        metavar=("HYDRO", "SHEAR"),
        default=list(defaults.large_strain),
        help=f"the random large volume change or large shear, fractions "
        f"({_shown(defaults.large_strain)})",
    )
    perturbation.add_argument(
        "--no-supercells",
        dest="supercells",
        action="store_false",
        help="do not repeat one-atom cells to 8 atoms before rattling",
    )
    perturbation.add_argument(
        "--retries", type=int, default=defaults.retries,
        help=f"draws per perturbation ({_shown(defaults.retries)})"
    )
    perturbation.add_argument(
        "--radii",
        type=_radii,
        nargs="+",
        default=None,
        metavar="EL=R",
        help="minimum-distance radii in Å, 'Cu=0.9 Ag=1.0' or one number for all (default: "
        "Cu 0.9, Ag 1.0, others 0.7 x covalent radius)",
    )
    perturbation.add_argument(
        "--max-aspect", type=float, default=defaults.max_aspect,
        help=f"cell aspect at most ({_shown(defaults.max_aspect)})"
    )


def _add_labels(run: argparse.ArgumentParser, defaults: RunSettings) -> None:
    """The options of ``run`` on labels: the reference calculator of single points of the training
    set; their defaults from ``defaults``."""
    labelling = run.add_argument_group("labels (single points of the training set)")
    labelling.add_argument(
        "--label",
        default=defaults.label,
        metavar="CALC",
        help="reference calculator for the labels: a built-in name or an import path (e.g. "
        "gpaw with --label-kwargs '{\"cutoff\": 500}'); labels go to "
        "training_set_labelled.extxyz under REF_ keys (none)",
    )
    labelling.add_argument(
        "--label-kwargs",
        type=_mapping,
        default={},
        metavar="JSON",
        help="keyword arguments of the label calculator as a JSON object",
    )
    labelling.add_argument(
        "--no-deduplicate",
        dest="deduplicate",
        action="store_false",
        help="label every structure, even those equivalent to another (each labelled once)",
    )
    labelling.add_argument(
        "--no-isolated-atoms",
        dest="isolated_atoms",
        action="store_false",
        help="label no isolated atoms (the fitting codes' reference energies; labelled)",
    )
    labelling.add_argument(
        "--isolated-box",
        type=float,
        default=defaults.isolated_box,
        metavar="Å",
        help=f"edge of the cubic box of each isolated atom ({_shown(defaults.isolated_box)})",
    )


def _add_fit(run: argparse.ArgumentParser, defaults: RunSettings) -> None:
    """The options of ``run`` on fitting a potential to the labels and validating it."""
    fitting = run.add_argument_group("fit and validate (after --label)")
    fitting.add_argument(
        "--fit",
        choices=sorted(FIT_CODES),
        default=defaults.fit,
        help="fit a potential to the labels with this code's defaults (nine in ten seed "
        "families fitted, the rest give the validation errors); in the project a fit job (none)",
    )
    fitting.add_argument(
        "--validate",
        action="store_true",
        default=defaults.validate,
        help="compare the fitted potential with the label calculator on a held-out suite (E-V "
        "curves, elastic constants, phonons, a vacancy, MD snapshots); figures in "
        "figures/validation",
    )


def _add_executors(run: argparse.ArgumentParser, defaults: RunSettings) -> None:
    """The options of ``run`` on where the stages run: local processes or SLURM, with resources;
    their defaults from ``defaults``."""
    where = run.add_argument_group(
        "where it runs (a settings file can give sample, relax and label their own: "
        "[executors.relax] "
        'kind = "slurm", partition = ..., workers = ..., memory = ..., run_time = ...)'
    )
    where.add_argument(
        "--executor",
        choices=sorted(EXECUTOR_KINDS),
        default=defaults.executor,
        help="local: --workers processes; slurm: --workers SLURM jobs at a time, lost ones "
        "resubmitted (local)",
    )
    where.add_argument("--partition", default=None, help="SLURM partition (with --executor slurm)")
    where.add_argument(
        "--memory", type=float, default=None, metavar="GB", help="memory of each SLURM job (GB)"
    )
    where.add_argument(
        "--wall-time", type=float, default=None, metavar="S", help="wall time of each SLURM job (s)"
    )


def _add_output(run: argparse.ArgumentParser, defaults: RunSettings) -> None:
    """The options of ``run`` on project and output: folder, database, output folder, figures,
    progress, settings files; their defaults from ``defaults``."""
    output = run.add_argument_group("project and output")
    output.add_argument(
        "--project",
        default=defaults.project,
        help="project folder (SQLite job table, one job per stage run; reruns reuse finished "
        "jobs) (assyst_project)",
    )
    output.add_argument("--no-project", action="store_true", help="run in memory, store no jobs")
    output.add_argument(
        "--database",
        choices=DATABASES,
        default=defaults.database,
        help="job database: auto (your pyiron configuration if you have one, else an embedded "
        "SQLite file in the project folder), user, or embedded (auto)",
    )
    output.add_argument(
        "--output",
        default=None,
        metavar="FOLDER",
        help="where training_set.extxyz and figures/ go (default: the project folder, or "
        "assyst_output with --no-project)",
    )
    output.add_argument(
        "--no-figures", dest="figures", action="store_false", help="write no figures"
    )
    output.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bars (default: when the terminal is interactive)",
    )
    output.add_argument(
        "--config",
        metavar="FILE",
        help="TOML or YAML file of run settings (keys: the option names with '_' for '-', e.g. "
        "max_atoms = 4, spacegroups = [221, 225] or \"1-10,225\", radii = {Cu = 0.9}); options "
        "given on the command line win",
    )
    output.add_argument(
        "--write-config",
        metavar="FILE",
        help="write the settings of this run to a TOML or YAML file and stop",
    )
    run.add_argument("-v", "--verbose", action="store_true", help="log what each stage drops")


def _add_queries(commands: Any) -> None:
    """The subcommands ``jobs``, ``history``, ``export``, ``fit`` and ``validate``
    (``commands``: the subparsers)."""
    jobs = commands.add_parser("jobs", help="print the job table of a project")
    history = commands.add_parser("history", help="print the chain of a structure, seed first")
    export = commands.add_parser(
        "export", help="write stored structures as extxyz (.xyz/.extxyz) or a table (.pkl)"
    )
    fit = commands.add_parser(
        "fit",
        help="fit a potential to a project's labels (a fit job, reused when nothing changed)",
    )
    validate = commands.add_parser(
        "validate",
        help="compare a fit job's potential with the reference on the held-out suite "
        "(a validation job)",
    )
    for query in (jobs, history, export, fit, validate):
        query.add_argument("project", help="project folder (its sub-projects count too)")
        query.add_argument(
            "--database", choices=DATABASES, default="auto", help="job database, as for run"
        )
    history.add_argument("uuid", help="uuid of a stored structure")
    _add_export(export)
    _add_fit_command(fit)
    _add_validate_command(validate)


def _add_fit_command(fit: argparse.ArgumentParser) -> None:
    """The options of ``assyst-nodes fit``."""
    fit.add_argument(
        "--code", choices=sorted(FIT_CODES), default="linear_ace",
        help="the fitting code, with its defaults (linear_ace)",
    )
    fit.add_argument(
        "--split", nargs=3, type=float, metavar=("TRAIN", "VALIDATION", "TEST"),
        default=(0.9, 0.1, 0.0),
        help="fractions of the families: the training part is fitted, the validation part's "
        "errors are reported, the test part is left out (0.9 0.1 0)",
    )
    fit.add_argument("--split-seed", type=int, default=0, help="seed of the split (0)")
    fit.add_argument(
        "--weighting", choices=("uniform", "energy"), default="uniform",
        help="ACE: pacemaker's uniform or energy-based weights (uniform)",
    )
    fit.add_argument(
        "--energy", choices=("free_energy", "energy"), default="free_energy",
        help="the labelled energy fitted (free_energy)",
    )


def _add_validate_command(validate: argparse.ArgumentParser) -> None:
    """The options of ``assyst-nodes validate``."""
    validate.add_argument(
        "--fit-job", metavar="NAME",
        help="the fit job whose potential is validated (default: the newest fit job)",
    )
    validate.add_argument(
        "--reference", metavar="CALCULATOR",
        help="the reference calculator, a built-in name or an import path (default: the "
        "calculator of the project's label jobs)",
    )
    validate.add_argument(
        "--reference-kwargs", type=_mapping, default={}, metavar="JSON",
        help="keyword arguments of the reference calculator as a JSON object",
    )
    validate.add_argument(
        "--figures", metavar="FOLDER",
        help="also write the figures (parity, E-V curves, phonon bands) here",
    )


def _weight_of_origin(text: str) -> tuple[str, float]:
    """``"sampled=0.5"``: the weight of one origin (``config_type``)."""
    looks = "weights must look like 'sampled=0.5 perturbed=1' (origin=weight >= 0)"
    return _name_number(text, looks, at_least=0.0)


def _limit(text: str) -> float | None:
    """A limit (a number > 0) or ``none``."""
    if text.strip().lower() == "none":
        return None
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a number > 0 or 'none', got {text!r}")
    return value


def _add_export(export: argparse.ArgumentParser) -> None:
    """The arguments of ``export``: what to write, in which format, with which energy, split
    and weights (their defaults those of :class:`~assyst_nodes.stages.weights.Weights` and
    :class:`~assyst_nodes.stages.split.Split`)."""
    weights, split = Weights(), Split()
    export.add_argument(
        "output",
        help="file to write: *.extxyz or *.xyz (structures; with --labels-prefix for fitting "
        "codes), *.pkl.gzip (with --pacemaker), or a table *.pkl, *.pkl.gz or *.parquet",
    )
    export.add_argument(
        "--stage",
        default=None,
        help="stage whose output to write (filter: the training set; label: its labels; "
        "default: label with --labels-prefix or --pacemaker, else filter)",
    )
    export.add_argument("--step", default=None, help="only structures of this step")
    fitting = export.add_argument_group("for fitting codes (labelled structures only)")
    fitting.add_argument(
        "--labels-prefix",
        default=None,
        metavar="PREFIX",
        help="extxyz: write the labels (energy, forces, stress as 6 Voigt numbers) under PREFIX "
        "keys, e.g. REF_ (MACE's convention), with config_type and config_weight",
    )
    fitting.add_argument(
        "--pacemaker",
        action="store_true",
        help="write pacemaker's training table (gzip pandas pickle: ase_atoms, energy, forces, "
        "stress, energy_corrected, w_energy, w_forces, ...)",
    )
    fitting.add_argument(
        "--reference-energy",
        type=_element_energy,
        nargs="+",
        default=[],
        metavar="EL=E",
        help="energy of one isolated atom of each element (eV) for energy_corrected "
        "(default: the labelled isolated atoms')",
    )
    fitting.add_argument(
        "--energy",
        choices=ENERGIES,
        default="free_energy",
        help="energy to write: free_energy is consistent with the forces under electronic "
        "smearing (free_energy)",
    )
    fitting.add_argument(
        "--split",
        type=float,
        nargs=3,
        default=None,
        metavar=("TRAIN", "VALIDATION", "TEST"),
        help="write three files, *_train, *_validation and *_test, with these fractions, "
        "whole seed-crystal families in each (none: one file)",
    )
    fitting.add_argument(
        "--split-seed", type=int, default=split.seed, help=f"seed of the split ({split.seed})"
    )
    fitting.add_argument(
        "--weight",
        type=_weight_of_origin,
        nargs="+",
        default=[],
        metavar="ORIGIN=W",
        help="weight per origin: sampled, volume_relaxed, relaxed, perturbed (all 1)",
    )
    fitting.add_argument(
        "--high-energy", type=_limit, default=weights.high_energy, metavar="EV",
        help="eV/atom above the convex hull above which a structure weighs --high-weight times "
        f"its origin's ({_shown(weights.high_energy)})",
    )
    fitting.add_argument(
        "--high-force", type=_limit, default=weights.high_force, metavar="EV_A",
        help=f"force (eV/Å) above which likewise ({_shown(weights.high_force)})",
    )
    fitting.add_argument(
        "--high-weight", type=float, default=weights.high_weight, metavar="W",
        help=f"factor of --high-energy and --high-force ({_shown(weights.high_weight)})",
    )
    fitting.add_argument(
        "--max-energy", type=_limit, default=weights.max_energy, metavar="EV",
        help="eV/atom above the convex hull above which a structure is left out "
        f"(pacemaker's DEup; {_shown(weights.max_energy)})",
    )
    fitting.add_argument(
        "--max-force", type=_limit, default=weights.max_force, metavar="EV_A",
        help="force (eV/Å) above which a structure is left out (pacemaker's DFup; "
        f"{_shown(weights.max_force)})",
    )


def build_parser(run_defaults: dict | None = None) -> argparse.ArgumentParser:
    """Build the command-line parser of ``assyst-nodes`` and its subcommands.

    The subcommands are ``run``, ``jobs``, ``history`` and ``export``; the defaults of ``run``'s
    options are those of :class:`~assyst_nodes.cli.settings.RunSettings`.

    Parameters
    ----------
    run_defaults : dict, optional
        Defaults of ``run``'s options that replace its own (from ``--config``, as
        :func:`~assyst_nodes.cli.settings.read_settings_file` reads them), keyed by the option
        names with ``_`` for ``-`` (:data:`~assyst_nodes.cli.settings.RUN_KEYS`), in the
        options' units (Å, eV/Å, GPa, s). Options given on the command line still win.
        Default: none (``run``'s own defaults).

    Returns
    -------
    argparse.ArgumentParser
        The parser; :func:`settings_of` turns what it parses for ``run`` into run settings.
    """
    defaults = RunSettings()
    parser = argparse.ArgumentParser(
        prog="assyst-nodes",
        description="Build ASSYST training sets for machine-learning interatomic potentials.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser(
        "run",
        help="run sample -> relax -> perturb -> filter into a project, print a per-stage table, "
        "write the training set and figures",
        description="Run the ASSYST pipeline: sample symmetric crystals, relax them (volume, "
        "then a second relaxation), perturb every relaxed structure, filter everything. Every "
        "stage run is stored as a job in the project folder and reused when rerun.",
    )
    _add_sampling(run, defaults)
    _add_relaxation(run, defaults)
    _add_perturbation(run, defaults)
    _add_labels(run, defaults)
    _add_fit(run, defaults)
    _add_executors(run, defaults)
    _add_output(run, defaults)

    _add_queries(commands)
    run.set_defaults(executors={})
    if run_defaults:
        run.set_defaults(**run_defaults)
    return parser


def settings_of(args: argparse.Namespace) -> RunSettings:
    """Turn the parsed arguments of ``assyst-nodes run`` into run settings.

    Parameters
    ----------
    args : argparse.Namespace
        What the parser of :func:`build_parser` parsed for ``run``: one attribute for each of
        :data:`~assyst_nodes.cli.settings.RUN_KEYS`. ``radii`` may be a list of one number
        (every element, Å) or of ``(element, radius)`` pairs (Å).

    Returns
    -------
    RunSettings
        The :class:`~assyst_nodes.cli.settings.RunSettings` of the run.

    Raises
    ------
    ValueError
        Naming a bad setting: ``radii`` mixing one number with ``El=R`` pairs, or any value
        that :class:`~assyst_nodes.cli.settings.RunSettings` refuses.
    """
    values = {key: getattr(args, key) for key in RUN_KEYS}
    radii = values["radii"]
    if isinstance(radii, list):
        if len(radii) == 1 and not isinstance(radii[0], tuple):
            values["radii"] = float(radii[0])
        elif all(isinstance(item, tuple) for item in radii):
            values["radii"] = dict(radii)
        else:
            raise ValueError(
                f"radii must be one number or all 'El=R' pairs (Å), got {radii!r}"
            )
    return RunSettings(**values)


