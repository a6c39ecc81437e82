"""Settings of one ``assyst-nodes run``, from the command line or a TOML/YAML file.

:class:`RunSettings` is the flat, file-friendly form of a run (plain numbers, strings and
lists, so a run can live in a file under version control); its methods turn it into the
stage configs (calculator, relaxations, perturbations, filters). Keys of a settings file are
the option names of ``assyst-nodes run`` with ``_`` for ``-``::

    # run.toml
    elements = ["Cu", "Ag"]
    max_atoms = 4
    spacegroups = "1-10,221,225"       # or a list of numbers
    calculator = "emt"                 # emt | morse | lj | "package.module:Name"
    radii = {Cu = 0.9, Ag = 1.0}       # Å
    rattle = 0.1                       # Å
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import defaults
from ..calculators import EMT, CalculatorConfig, ImportedCalculator, LennardJones, Morse
from ..calculators.dft import GPAW
from ..calculators.mlip import SevenNet
from ..defaults import canonical_filter, canonical_perturbations
from ..runtime.executors import EXECUTOR_KINDS, ExecutorConfig, Slurm, executor_config
from ..stages.filter import DistanceFilter, FilterBase
from ..stages.fit import MACE, FitSettings, LinearACE, PacemakerACE
from ..stages.isolated import IsolatedAtoms
from ..stages.perturb import PerturbationLike
from ..stages.relax import CellRelax, FullRelax, Relax, SymmetryRelax, VolumeRelax
from ..stages.sample import Formulas, sample
from ..stages.validate import Suite
from ..validation import check_real

__all__ = [
    "BUILTIN_CALCULATORS",
    "DATABASES",
    "EXECUTOR_STAGES",
    "FIT_CODES",
    "RELAXATIONS",
    "RUN_KEYS",
    "RunSettings",
    "default_radii",
    "format_spacegroups",
    "parse_spacegroups",
    "read_settings_file",
    "use_user_config",
]

BUILTIN_CALCULATORS: Mapping[str, type[CalculatorConfig]] = {
    "emt": EMT,
    "morse": Morse,
    "lj": LennardJones,
    "lennard-jones": LennardJones,
    "sevennet": SevenNet,
    "gpaw": GPAW,
}
"""Calculator names ``--calculator`` and ``--label`` know (``sevennet`` needs the extra ``mlip``,
``gpaw`` the extra ``dft``); anything else must be an import path."""

FIT_CODES: Mapping[str, FitSettings] = {
    "linear_ace": LinearACE(),
    "pacemaker": PacemakerACE(),
    "mace": MACE(),
}
"""The fits ``--fit`` knows, with their defaults (``linear_ace`` and ``pacemaker`` need the extra
``ace``, ``mace`` the extra ``fit``)."""


def calculator_from(name: str, kwargs: Mapping[str, Any], option: str) -> CalculatorConfig:
    """The config of calculator ``name`` (a built-in of :data:`BUILTIN_CALCULATORS` or an
    import path) with ``kwargs``; ``ValueError``/``ImportError`` naming the ``option`` and the
    bad name, path or keyword."""
    name = name.strip()
    kwargs = dict(kwargs)
    if name.lower() in BUILTIN_CALCULATORS:
        try:
            config = BUILTIN_CALCULATORS[name.lower()](**kwargs)
        except TypeError as error:
            raise ValueError(f"{option} {name!r}: bad {option}_kwargs ({error})") from None
        config.check()
        return config
    if "." not in name and ":" not in name:
        raise ValueError(
            f"{option} {name!r} is neither a built-in ({', '.join(BUILTIN_CALCULATORS)}) "
            "nor an import path like 'ase.calculators.lj:LennardJones'"
        )
    config = ImportedCalculator(name, kwargs)
    config.check()
    return config


RELAXATIONS: Mapping[str, type[Relax]] = {
    "full": FullRelax,
    "symmetry": SymmetryRelax,
    "cell": CellRelax,
    "positions": Relax,
}
"""The second relaxation (after the volume relaxation) by name."""


def _takes_pressure(kind: type[Relax]) -> bool:
    """Whether relaxations of ``kind`` take a pressure (field ``pressure_gpa``, GPa)."""
    return "pressure_gpa" in {f.name for f in dataclasses.fields(kind)}


RADIUS_PER_COVALENT = 0.7
"""Default minimum-distance radius of an element as a fraction of its covalent radius (gives
0.92 Å for Cu and 1.02 Å for Ag, next to the embedded example's 0.9 and 1.0 Å)."""


def default_radii(elements: Sequence[str]) -> dict[str, float]:
    """Default minimum-distance radii (Å) of the filter for ``elements``.

    Parameters
    ----------
    elements : sequence of str
        Chemical symbols, e.g. ``["Cu", "Ag"]``.

    Returns
    -------
    dict of str to float
        One radius (Å) per element: the embedded example's for Cu and Ag
        (:data:`assyst_nodes.defaults.RADII`), else :data:`RADIUS_PER_COVALENT` times ASE's
        covalent radius, rounded to 0.01 Å.

    Raises
    ------
    ValueError
        If a symbol is not a chemical symbol.
    """
    from ase.data import atomic_numbers, covalent_radii

    radii = {}
    for symbol in elements:
        if symbol in defaults.RADII:
            radii[symbol] = float(defaults.RADII[symbol])
        elif symbol in atomic_numbers:
            radius = RADIUS_PER_COVALENT * float(covalent_radii[atomic_numbers[symbol]])
            radii[symbol] = round(radius, 2)
        else:
            raise ValueError(f"{symbol!r} is not a chemical symbol (e.g. 'Cu', 'Ag')")
    return radii


def format_spacegroups(groups: Sequence[int]) -> str:
    """Write space-group numbers as compact text: ``[1, 2, 3, 225]`` -> ``"1-3,225"``.

    The inverse of :func:`parse_spacegroups`.

    Parameters
    ----------
    groups : sequence of int
        Space-group numbers (1..230), in the order they are to be written; runs of
        consecutive numbers become ranges ``low-high``.

    Returns
    -------
    str
        Comma-separated numbers and ranges (empty for no groups).
    """
    parts: list[str] = []
    ordered = list(groups)
    start = 0
    for index in range(1, len(ordered) + 1):
        if index == len(ordered) or ordered[index] != ordered[index - 1] + 1:
            low, high = ordered[start], ordered[index - 1]
            parts.append(str(low) if low == high else f"{low}-{high}")
            start = index
    return ",".join(parts)


def parse_spacegroups(text: str) -> list[int]:
    """Read space-group numbers from text: ``"1-10,221,225"`` -> ``[1, ..., 10, 221, 225]``.

    The inverse of :func:`format_spacegroups`.

    Parameters
    ----------
    text : str
        Comma-separated numbers (1..230) and inclusive ranges ``low-high``; blanks around the
        parts and empty parts are ignored.

    Returns
    -------
    list of int
        The numbers, in the order given, ranges expanded.

    Raises
    ------
    ValueError
        Naming the text, if a part is neither a whole number nor a range of them.
    """
    groups: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        low, sep, high = part.partition("-")
        try:
            groups.extend(range(int(low), int(high) + 1) if sep else [int(low)])
        except ValueError:
            raise ValueError(
                f"space groups must look like '1-10,225' (numbers 1..230), got {text!r}"
            ) from None
    return groups


def _calculator_name(config: CalculatorConfig) -> str:
    """The name :data:`BUILTIN_CALCULATORS` gives the class of ``config``."""
    return next(name for name, kind in BUILTIN_CALCULATORS.items() if type(config) is kind)


def _relax_name(settings: Relax) -> str:
    """The name :data:`RELAXATIONS` gives the class of ``settings``."""
    return next(name for name, kind in RELAXATIONS.items() if type(settings) is kind)


EXECUTOR_STAGES: tuple[str, ...] = ("sample", "relax", "label")
"""Stages of a run that fan out, each with its own executor (``executors`` sections)."""

DATABASES: tuple[str, ...] = ("auto", "user", "embedded")
"""Where a run's jobs go: the user's pyiron configuration if there is one, else an embedded
SQLite file (``auto``); the configured database (``user``); the embedded file (``embedded``)."""


@dataclass(frozen=True)
class RunSettings:
    """Everything one run needs, as plain values (units: Å, eV, GPa).

    The flat, file-friendly form of ``assyst-nodes run``: plain numbers, strings and lists, so
    a run can live in a TOML or YAML file (:meth:`write`, :meth:`from_file`); its methods turn
    it into the stage configs. The defaults are the embedded example's
    (:mod:`assyst_nodes.defaults`). Every value is checked when the settings are made.

    Parameters
    ----------
    elements : sequence of str or str, default ("Cu", "Ag")
        Chemical symbols; sampling covers every composition of them (one symbol may be given
        as a plain string).
    min_atoms, max_atoms : int, default 1 and 4
        Atoms per cell at least and at most of the sampled compositions.
    spacegroups : sequence of int, int or str, optional
        Space groups to sample, as numbers or as text like ``"1-10,221,225"``
        (:func:`parse_spacegroups`). Default: none (all 230).
    max_structures : int or None, default 30
        Sampled crystals at most; ``None`` (or the text ``"none"``/``"all"``): no cap.
    sample_time_limit : float, optional
        Wall-clock limit (s, > 0) of pyxtal on one (formula, space group) grid point; a point
        past it is skipped and reported. Default: none (no limit).
    seed : int, default 0
        Base seed of every random choice.
    workers : int, default 1
        Processes that sample and relax (>= 1); with ``executor="slurm"``, SLURM jobs at a
        time.
    calculator : str, default "emt"
        The calculator of both relaxations: a name of :data:`BUILTIN_CALCULATORS` or an import
        path (``"package.module:Name"``), called with ``calculator_kwargs``.
    calculator_kwargs : mapping, optional
        Keyword arguments of ``calculator``. Default: none (empty).
    relax : str, default "full"
        The second relaxation, after a volume relaxation: a name of :data:`RELAXATIONS`
        (``full``, ``symmetry``, ``cell`` or ``positions``).
    pressure : float, default 0.0
        Pressure (GPa) of the volume relaxation and of a ``full`` or ``symmetry`` second
        relaxation; a non-zero pressure is refused with ``cell`` or ``positions``, which relax
        at no pressure.
    fmax : float, default 0.001
        Force tolerance (eV/Å): both relaxations run until the forces are below it or
        ``max_steps`` is reached.
    max_steps : int, default 100
        Optimiser steps at most of each relaxation (>= 1).
    time_limit : float, optional
        Wall-clock limit (s, > 0) of one structure's relaxation; a structure past it is
        dropped and reported. Default: none (no limit).
    rattle : float, default 0.1
        σ (Å) of the rattle of the first perturbation.
    strain : tuple of float, default (0.05, 0.05)
        The small strain (hydrostatic, shear) under the rattle, fractions.
    large_strain : tuple of float, default (0.8, 0.2)
        (hydrostatic, shear), fractions: the second perturbation draws at random either a
        large volume change or a large shear.
    supercells : bool, default True
        Whether one-atom cells are repeated to 8 atoms before they are rattled.
    retries : int, default 10
        Draws of each perturbation at most (>= 1): one is redrawn until it passes the filter.
    radii : float or mapping of str to float, optional
        Minimum-distance radii (Å) of the filter, which keeps pair distances >= r_i + r_j: one
        for every element or one per element. Default: none (:func:`default_radii` of
        ``elements``).
    max_aspect : float, default 6.0
        The filter keeps cells no more elongated than this (longest over shortest cell
        height).
    project : str, default "assyst_project"
        The project folder, where every stage run is stored as a job (reused on rerun).
    no_project : bool, default False
        Run in memory and store no jobs.
    database : str, default "auto"
        The project's job database, one of :data:`DATABASES`: ``auto`` (the user's pyiron
        configuration if there is one, else an embedded SQLite file in the folder),
        ``user`` or ``embedded``.
    label : str, optional
        The reference calculator (e.g. DFT) of single points of the training set: a built-in
        name or an import path, called with ``label_kwargs``. Default: none (no labels).
    label_kwargs : mapping, optional
        Keyword arguments of ``label``. Default: none (empty).
    deduplicate : bool, default True
        With labels: label equivalent structures once
        (:data:`~assyst_nodes.defaults.DUPLICATES`).
    isolated_atoms : bool, default True
        With labels: label the isolated atoms of the elements too (the fitting codes'
        reference energies).
    isolated_box : float, default 12.0
        Edge (Å) of the cubic box of the isolated atoms (> 0).
    fit : str, optional
        With labels: fit a potential to them with the defaults of one code of
        :data:`FIT_CODES` (``linear_ace``, ``pacemaker``, ``mace``). Default: none.
    validate : bool, default False
        With a fit: its errors against the label calculator on the held-out suite of the
        elements (:class:`~assyst_nodes.stages.validate.Suite`).
    executor : str, default "local"
        Where sampling, relaxation and labelling run: ``local`` (``workers`` processes) or
        ``slurm`` (``workers`` SLURM jobs at a time in ``partition``).
    partition : str, optional
        The SLURM partition; needed with ``executor="slurm"``. Default: none.
    memory : float, optional
        Memory (GB) of each SLURM job. Default: none (the partition's default).
    wall_time : float, optional
        Wall time (s) of each SLURM job. Default: none (the partition's default).
    executors : mapping of str to mapping, optional
        Overrides ``executor`` per stage: keys ``sample``, ``relax``, ``label`` (see
        :data:`EXECUTOR_STAGES`), each a table with ``kind`` (``local``, ``slurm``) and the
        options of :mod:`assyst_nodes.runtime.executors` (``workers``, ``partition``,
        ``cores``, ``memory``, ``run_time``, ``resubmit``, ``pending_timeout``). Default:
        none (every stage on ``executor``).
    output : str, optional
        Folder of the training set (extxyz) and figures. Default: none (the project folder,
        or ``assyst_output`` with ``no_project``).
    figures : bool, default True
        Whether figures are written.
    progress : bool, optional
        Whether progress bars are shown. Default: none (when the terminal is interactive).

    Raises
    ------
    ValueError
        Naming the bad value: e.g. an unknown element, database, relaxation, executor kind or
        ``executors`` stage, a strain that is not two numbers, a pressure with a relaxation
        that takes none, a time limit that is not seconds > 0, ``workers``, ``max_steps`` or
        ``retries`` below 1, or bad perturbation, filter or sampling values.
    """

    elements: tuple[str, ...] = defaults.ELEMENTS
    min_atoms: int = defaults.MIN_ATOMS
    max_atoms: int = defaults.MAX_ATOMS
    spacegroups: tuple[int, ...] | None = None
    max_structures: int | None = defaults.MAX_STRUCTURES
    sample_time_limit: float | None = None
    seed: int = defaults.SEED
    workers: int = defaults.WORKERS
    calculator: str = _calculator_name(defaults.CALCULATOR)
    calculator_kwargs: Mapping[str, Any] = field(default_factory=dict)
    relax: str = _relax_name(defaults.FULL_RELAX)
    pressure: float = defaults.VOLUME_RELAX.pressure_gpa
    fmax: float = defaults.VOLUME_RELAX.force_tolerance
    max_steps: int = defaults.VOLUME_RELAX.max_steps
    time_limit: float | None = None
    rattle: float = defaults.RATTLE
    strain: tuple[float, float] = defaults.STRAIN
    large_strain: tuple[float, float] = defaults.LARGE_STRAIN
    supercells: bool = defaults.SUPERCELLS
    retries: int = defaults.RETRIES
    radii: float | Mapping[str, float] | None = None
    max_aspect: float = defaults.MAX_ASPECT
    project: str = "assyst_project"
    no_project: bool = False
    database: str = "auto"
    label: str | None = None
    label_kwargs: Mapping[str, Any] = field(default_factory=dict)
    deduplicate: bool = True
    isolated_atoms: bool = True
    isolated_box: float = defaults.ISOLATED_ATOMS.box
    fit: str | None = None
    validate: bool = False
    executor: str = "local"
    partition: str | None = None
    memory: float | None = None
    wall_time: float | None = None
    executors: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    output: str | None = None
    figures: bool = True
    progress: bool | None = None

    def __post_init__(self) -> None:
        elements = (self.elements,) if isinstance(self.elements, str) else self.elements
        object.__setattr__(self, "elements", tuple(elements))
        Formulas.range(self.elements, 0, 1)  # names a bad symbol
        if self.database not in DATABASES:
            raise ValueError(
                f"database must be one of {', '.join(DATABASES)}, got {self.database!r}"
            )
        if isinstance(self.max_structures, str):
            if self.max_structures.strip().lower() not in {"none", "all"}:
                raise ValueError(
                    f"max_structures must be a number or 'none' (no cap), "
                    f"got {self.max_structures!r}"
                )
            object.__setattr__(self, "max_structures", None)
        if isinstance(self.spacegroups, int):
            object.__setattr__(self, "spacegroups", (self.spacegroups,))
        elif isinstance(self.spacegroups, str):
            object.__setattr__(self, "spacegroups", tuple(parse_spacegroups(self.spacegroups)))
        elif self.spacegroups is not None:
            object.__setattr__(self, "spacegroups", tuple(self.spacegroups))
        for name in ("strain", "large_strain"):
            value = tuple(getattr(self, name))
            if len(value) != 2:
                raise ValueError(f"{name} must be two numbers (hydrostatic, shear), got {value!r}")
            object.__setattr__(self, name, value)
        if self.relax not in RELAXATIONS:
            raise ValueError(f"relax must be one of {sorted(RELAXATIONS)}, got {self.relax!r}")
        check_real("pressure", self.pressure, "a number (GPa)")
        if self.pressure != 0 and not _takes_pressure(RELAXATIONS[self.relax]):
            takes = sorted(name for name, kind in RELAXATIONS.items() if _takes_pressure(kind))
            raise ValueError(
                f"pressure (--pressure) {self.pressure} GPa would be dropped by relax "
                f"{self.relax!r}, which relaxes at no pressure (cell: the cell shape at fixed "
                f"volume, positions: the atoms in a fixed cell); use relax (--relax) "
                f"{' or '.join(takes)} for a relaxation at {self.pressure} GPa, or pressure 0"
            )
        if not isinstance(self.calculator, str) or not self.calculator.strip():
            raise ValueError(
                f"calculator must be one of {sorted(BUILTIN_CALCULATORS)} or an import path "
                f"'package.module:Name', got {self.calculator!r}"
            )
        for name in ("time_limit", "sample_time_limit"):
            limit = getattr(self, name)
            if limit is not None and not (math.isfinite(limit) and limit > 0):
                raise ValueError(f"{name} must be seconds > 0 or None, got {limit!r}")
        for name in ("workers", "max_steps", "retries"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)!r}")
        if self.fit is not None and self.fit not in FIT_CODES:
            raise ValueError(f"fit must be one of {sorted(FIT_CODES)} or none, got {self.fit!r}")
        if self.fit is not None and self.label is None:
            raise ValueError(
                f"fit {self.fit!r} needs labels: give a label calculator (--label emt, ...)"
            )
        if self.validate and self.fit is None:
            raise ValueError("validate needs a fit: give --fit linear_ace (or pacemaker, mace)")
        unknown = sorted(set(self.executors) - set(EXECUTOR_STAGES))
        if unknown:
            raise ValueError(
                f"executors has sections for unknown stages {unknown}; valid: "
                f"{list(EXECUTOR_STAGES)}"
            )
        for stage in (*EXECUTOR_STAGES, None):
            self.executor_for(stage)  # a bad kind or option fails here, naming it
        self.perturbations()  # bad strains, sigma, radii or aspect fail here, naming the value
        self.filters()
        sample(  # checks the sampling arguments now; nothing is drawn until iterated
            Formulas.range(self.elements, 0, self.max_atoms + 1),
            self.spacegroups,
            min_atoms=self.min_atoms,
            max_atoms=self.max_atoms,
            max_structures=self.max_structures,
            tolerance=self.distance_filter(),
        )

    # --- the stage configs -------------------------------------------------------------------
    def calculator_config(self) -> CalculatorConfig:
        """The calculator config; ``ValueError``/``ImportError`` naming a bad name or path."""
        return calculator_from(self.calculator, self.calculator_kwargs, "calculator")

    def label_config(self) -> CalculatorConfig | None:
        """The reference calculator of the label stage (``None``: no labels)."""
        if self.label is None:
            return None
        return calculator_from(self.label, self.label_kwargs, "label")

    def _relaxation(self, kind: type[Relax]) -> Relax:
        values: dict[str, Any] = {"max_steps": self.max_steps, "force_tolerance": self.fmax}
        if _takes_pressure(kind):
            values["pressure_gpa"] = self.pressure
        return kind(**values, calculator=self.calculator_config())

    def executor_for(self, stage: str | None) -> ExecutorConfig | None:
        """Where ``stage`` (``sample``, ``relax``; ``None``: the run's default) runs: its
        section of ``executors``, else ``executor``; ``None`` for ``workers`` local
        processes."""
        section = dict(self.executors.get(stage, {})) if stage is not None else {}
        if section:
            kind = section.pop("kind", "local")
            if not isinstance(kind, str):
                raise ValueError(f"executors.{stage}.kind must be a name, got {kind!r}")
            return executor_config(kind, **section)
        if self.executor not in EXECUTOR_KINDS:
            raise ValueError(
                f"executor must be one of {', '.join(EXECUTOR_KINDS)}, got {self.executor!r}"
            )
        if self.executor == "local":
            return None
        if not self.partition:
            raise ValueError(
                "executor slurm needs a partition (--partition NAME; sinfo lists them)"
            )
        return Slurm(
            self.partition, workers=self.workers, memory=self.memory, run_time=self.wall_time
        )

    def volume_relax(self) -> Relax:
        """The first relaxation: volume only, at ``pressure``."""
        return self._relaxation(VolumeRelax)

    def full_relax(self) -> Relax:
        """The second relaxation, as named by ``relax``."""
        return self._relaxation(RELAXATIONS[self.relax])

    def perturbations(self) -> list[PerturbationLike]:
        """The two perturbations (the defaults give the embedded example's)."""
        return list(
            canonical_perturbations(self.rattle, self.strain, self.large_strain, self.supercells)
        )

    def radii_table(self) -> float | dict[str, float]:
        """The radii (Å) as given, or :func:`default_radii` of ``elements``."""
        if self.radii is None:
            return default_radii(self.elements)
        return self.radii if isinstance(self.radii, float | int) else dict(self.radii)

    def distance_filter(self) -> DistanceFilter:
        """Minimum distances with :meth:`radii_table`."""
        return DistanceFilter(self.radii_table())

    def filters(self) -> FilterBase:
        """Minimum distances and cell aspect: the final filter, also used while perturbing."""
        return canonical_filter(self.radii_table(), self.max_aspect)

    def isolated_config(self) -> IsolatedAtoms | None:
        """The isolated atoms labelled beside the training set (``None``: none)."""
        if not self.isolated_atoms:
            return None
        return dataclasses.replace(defaults.ISOLATED_ATOMS, box=self.isolated_box)

    def pipeline_arguments(self) -> dict[str, Any]:
        """The keyword arguments of :func:`assyst_nodes.pipeline.run_pipeline` for this run
        (the project and outputs aside): every stage config built from the settings."""
        return {
            "elements": self.elements,
            "min_atoms": self.min_atoms,
            "max_atoms": self.max_atoms,
            "spacegroups": self.spacegroups,
            "max_structures": self.max_structures,
            "volume_relax": self.volume_relax(),
            "full_relax": self.full_relax(),
            "perturbations": self.perturbations(),
            "filters": self.filters(),
            "retries": self.retries,
            "rng": self.seed,
            "workers": self.workers,
            "executor": self.executor_for(None),
            "sample_executor": self.executor_for("sample"),
            "relax_executor": self.executor_for("relax"),
            "label_calculator": self.label_config(),
            "label_executor": self.executor_for("label"),
            "duplicates": defaults.DUPLICATES if self.deduplicate else None,
            "isolated_atoms": self.isolated_config(),
            "fit": None if self.fit is None else FIT_CODES[self.fit],
            "validate": Suite(tuple(self.elements)) if self.validate else None,
            "progress": self.progress,
            "time_limit": self.time_limit,
            "sample_time_limit": self.sample_time_limit,
        }

    def output_folder(self) -> Path:
        """Where the training set and figures go."""
        if self.output is not None:
            return Path(self.output)
        return Path("assyst_output" if self.no_project else self.project)

    def check(self) -> None:
        """Build every config once, so bad settings fail before any work starts."""
        self.volume_relax()
        self.full_relax()
        self.perturbations()
        self.filters()
        self.label_config()
        self.isolated_config()

    # --- files -------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain values (lists, dicts) that TOML and YAML can hold: ``None`` entries are left
        out, but no cap on structures is ``"none"`` and the default radii are written out."""
        values = {}
        for item in dataclasses.fields(self):
            value = getattr(self, item.name)
            if item.name == "max_structures" and value is None:
                value = "none"
            elif item.name == "radii" and value is None:
                value = self.radii_table()
            if value is None:
                continue
            if item.name == "spacegroups":
                value = format_spacegroups(value)
            elif isinstance(value, tuple):
                value = list(value)
            elif isinstance(value, Mapping):
                value = dict(value)
            values[item.name] = value
        return values

    def write(self, path: str | Path) -> Path:
        """Write the settings as TOML or YAML (by suffix); reading it back gives them again."""
        path = Path(path)
        values = self.to_dict()
        if path.suffix in {".yaml", ".yml"}:
            import yaml

            text = yaml.safe_dump(values, sort_keys=False, default_flow_style=None)
        elif path.suffix == ".toml":
            text = "".join(f"{key} = {_toml(value)}\n" for key, value in values.items())
        else:
            raise ValueError(f"settings file {str(path)!r} must end in .toml, .yaml or .yml")
        path.write_text(text)
        return path

    @classmethod
    def from_file(cls, path: str | Path) -> RunSettings:
        """The settings of a TOML or YAML file (keys: :data:`RUN_KEYS`)."""
        return cls(**read_settings_file(path))


RUN_KEYS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(RunSettings))
"""Keys a settings file may hold."""


def use_user_config(database: str) -> bool | None:
    """Translate a ``database`` setting into the project layer's ``use_user_config``.

    Parameters
    ----------
    database : str
        One of :data:`DATABASES`: ``auto``, ``user`` or ``embedded``.

    Returns
    -------
    bool or None
        ``None`` for ``auto`` (the user's pyiron configuration if there is one, else an
        embedded SQLite file), ``True`` for ``user``, ``False`` for ``embedded``.

    Raises
    ------
    KeyError
        If ``database`` is none of :data:`DATABASES`.
    """
    return {"auto": None, "user": True, "embedded": False}[database]


def read_settings_file(path: str | Path) -> dict[str, Any]:
    """Read the run settings of a TOML (``.toml``) or YAML (``.yaml``/``.yml``) file.

    Parameters
    ----------
    path : str or pathlib.Path
        The settings file; its keys are the option names of ``assyst-nodes run`` with ``_``
        for ``-`` (:data:`RUN_KEYS`), its values in the options' units (Å, eV/Å, GPa, s).

    Returns
    -------
    dict of str to Any
        The settings, checked against :data:`RUN_KEYS`: ``spacegroups`` given as text are
        parsed (:func:`parse_spacegroups`), ``elements`` given as one string are split at
        blanks; an empty YAML file gives no settings. The values themselves are checked by
        :class:`RunSettings`.

    Raises
    ------
    ValueError
        Naming the file and what is wrong: it cannot be read, is not valid TOML or YAML, has
        another suffix, holds no key: value pairs, or has unknown keys.
    """
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as error:
        raise ValueError(f"cannot read settings file {str(path)!r}: {error}") from None
    if path.suffix == ".toml":
        import tomllib

        try:
            values = tomllib.loads(text)
        except tomllib.TOMLDecodeError as error:
            raise ValueError(f"settings file {str(path)!r} is not valid TOML: {error}") from None
    elif path.suffix in {".yaml", ".yml"}:
        import yaml

        try:
            values = yaml.safe_load(text)
        except yaml.YAMLError as error:
            raise ValueError(f"settings file {str(path)!r} is not valid YAML: {error}") from None
        values = {} if values is None else values
    else:
        raise ValueError(f"settings file {str(path)!r} must end in .toml, .yaml or .yml")
    if not isinstance(values, dict):
        raise ValueError(
            f"settings file {str(path)!r} must hold key: value pairs, got {type(values).__name__}"
        )
    unknown = sorted(set(values) - set(RUN_KEYS))
    if unknown:
        raise ValueError(
            f"settings file {str(path)!r}: unknown keys {unknown}; valid: {list(RUN_KEYS)}"
        )
    if isinstance(values.get("spacegroups"), str):
        values["spacegroups"] = parse_spacegroups(values["spacegroups"])
    if isinstance(values.get("elements"), str):
        values["elements"] = values["elements"].split()
    return values


def _toml(value: Any) -> str:
    """One TOML value: bool, number, string, list or inline table."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml(item) for item in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f'"{k}" = {_toml(v)}' for k, v in value.items()) + "}"
    raise ValueError(f"cannot write {value!r} ({type(value).__name__}) to TOML")
