"""The shape every fitting-code config has, and what a fit gives back."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ...calculators import CalculatorConfig
from ..weights import ENERGIES, Weights
from .data import TrainingData

__all__ = [
    "FitResult",
    "FitSettings",
    "check_positive_int",
    "check_positive_number",
    "require_settings",
    "run_code",
]


def check_positive_int(owner: str, name: str, value: object, minimum: int = 1) -> None:
    """A ``TypeError``/``ValueError`` naming ``owner.name`` unless ``value`` is an int >=
    ``minimum``.

    Parameters
    ----------
    owner : str
        The config class, for the message.
    name : str
        The field, for the message.
    value : object
        The value checked.
    minimum : int, default 1
        The smallest valid value.

    Raises
    ------
    TypeError
        ``value`` is not an int (a bool is not).
    ValueError
        ``value`` < ``minimum``.
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{owner}.{name} must be an integer >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{owner}.{name} must be >= {minimum}, got {value!r}")


def check_positive_number(
    owner: str, name: str, value: object, zero: bool = False, at_most: float | None = None
) -> None:
    """A ``TypeError``/``ValueError`` naming ``owner.name`` unless ``value`` is a finite number
    > 0 (>= 0 with ``zero``), and <= ``at_most`` where given.

    Parameters
    ----------
    owner : str
        The config class, for the message.
    name : str
        The field, for the message.
    value : object
        The value checked.
    zero : bool, default False
        Whether 0 is valid.
    at_most : float, optional
        The largest valid value. Default: ``None``, no bound.

    Raises
    ------
    TypeError
        ``value`` is not a number (a bool is not).
    ValueError
        ``value`` is not finite or out of range.
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{owner}.{name} must be a number, got {value!r}")
    low_ok = value >= 0 if zero else value > 0
    if not math.isfinite(value) or not low_ok or (at_most is not None and value > at_most):
        bound = ">= 0" if zero else "> 0"
        upper = f" and <= {at_most}" if at_most is not None else ""
        raise ValueError(f"{owner}.{name} must be a finite number {bound}{upper}, got {value!r}")


@dataclass(frozen=True)
class FitSettings(ABC):
    """How to fit a potential: a fitting code and its settings (a frozen dataclass).

    The fields every code shares come first; each code's config adds its own. ``str()`` is
    a short readable description (the step name of the fit).

    Parameters
    ----------
    weights : Weights or None, default Weights()
        Weights per origin and the limits beyond which structures are left out
        (:class:`~assyst_nodes.stages.weights.Weights`); ``None``: every structure weighs 1.
    energy : {"free_energy", "energy"}, default "free_energy"
        The labelled energy fitted (the free energy is the one consistent with the forces).
    seed : int, default 0
        Seed of the fitting code's random choices (initial parameters, batches).
    """

    weights: Weights | None = Weights()
    energy: Literal["free_energy", "energy"] = "free_energy"
    seed: int = 0

    def __post_init__(self) -> None:
        name = type(self).__name__
        if self.weights is not None and not isinstance(self.weights, Weights):
            raise TypeError(f"{name}.weights must be Weights(...) or None, got {self.weights!r}")
        if self.energy not in ENERGIES:
            raise ValueError(f"{name}.energy must be one of {ENERGIES}, got {self.energy!r}")
        check_positive_int(name, "seed", self.seed, minimum=0)

    @property
    @abstractmethod
    def code(self) -> str:
        """The fitting code's name (``"linear_ace"``, ``"pacemaker"``, ``"mace"``)."""

    def check(self) -> None:
        """Raise now if the fitting code is not installed (default: nothing to check).

        Raises
        ------
        ImportError
            In subclasses: the code is missing (the message says how to install it).
        """
        return None

    @abstractmethod
    def train(
        self, train: TrainingData, validation: TrainingData | None, directory: Path
    ) -> tuple[CalculatorConfig, list[Path]]:
        """Fit on ``train`` in ``directory``; return the potential and the files written.

        Parameters
        ----------
        train : TrainingData
            The weighed training structures and reference energies.
        validation : TrainingData or None
            Structures for the code's own validation (early stopping, logs), if any.
        directory : pathlib.Path
            An existing folder for the code's files.

        Returns
        -------
        tuple of (CalculatorConfig, list of pathlib.Path)
            The fitted potential, and the files written (the potential file first, then
            logs).
        """


@dataclass
class FitResult:
    """What a fit gives: the potential, its errors and the files of the fitting code.

    Parameters
    ----------
    potential : CalculatorConfig
        The fitted potential (:class:`~assyst_nodes.calculators.fitted.ACEPotential` or
        :class:`~assyst_nodes.calculators.fitted.MACEPotential`), usable wherever a
        calculator config is (relax, label, validate).
    settings : FitSettings
        How it was fitted.
    errors : dict of str to dict, optional
        ``"train"`` and, with validation structures, ``"validation"``: the errors of the
        potential on them (:func:`~assyst_nodes.stages.fit.data.potential_errors`: energies in
        meV/atom, forces in meV/Å).
    reference_energies : dict of str to float, optional
        The isolated atoms' energies (eV) the fit used. Default: empty.
    files : list of str, optional
        The potential file, then the fitting code's logs and inputs. Default: empty.
    left_out : int, default 0
        Structures left out (unlabelled, or of weight 0).
    seconds : float, default 0.0
        Wall time of the fit (s), the errors included.
    """

    potential: CalculatorConfig
    settings: FitSettings
    errors: dict[str, dict[str, float]] = field(default_factory=dict)
    reference_energies: dict[str, float] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)
    left_out: int = 0
    seconds: float = 0.0

    def summary(self) -> str:
        """One line per error set, e.g. ``train: 120 structures, E 3.1 meV/atom, F 45 meV/Å``.

        Returns
        -------
        str
            The potential, then a line per set of errors.
        """
        lines = [f"{self.potential} ({self.settings}; {self.seconds:.1f} s)"]
        for part, values in self.errors.items():
            lines.append(
                f"{part}: {int(values['structures'])} structures, energy RMSE "
                f"{values['energy_rmse']:.2f} meV/atom, force RMSE {values['force_rmse']:.1f} "
                f"meV/Å" + (f", {int(values['failed'])} failed" if values["failed"] else "")
            )
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """The result as plain JSON-able values (the potential and settings as their ``str``).

        Returns
        -------
        dict
            ``potential``, ``settings``, ``errors``, ``reference_energies``, ``files``,
            ``left_out``, ``seconds``.
        """
        return {
            "potential": str(self.potential),
            "settings": str(self.settings),
            "errors": {k: dict(v) for k, v in self.errors.items()},
            "reference_energies": dict(self.reference_energies),
            "files": list(self.files),
            "left_out": self.left_out,
            "seconds": self.seconds,
        }


def frozen_options(owner: str, options: Mapping[str, Any] | tuple) -> tuple[tuple[str, Any], ...]:
    """Extra command-line options as sorted ``(name, value)`` pairs (hashable)."""
    pairs = options.items() if isinstance(options, Mapping) else options
    frozen = []
    for pair in pairs:
        try:
            key, value = pair
        except (TypeError, ValueError):
            raise ValueError(
                f"{owner}.options must map option names to values, got {options!r}"
            ) from None
        if not isinstance(key, str) or not key:
            raise ValueError(f"{owner}.options: option names must be strings, got {key!r}")
        if isinstance(value, list | dict | set):
            raise TypeError(f"{owner}.options[{key!r}] must be a string or number, got {value!r}")
        frozen.append((key, value))
    return tuple(sorted(frozen))


def require_settings(settings: object) -> FitSettings:
    """``settings`` if it is a fitting config, else a ``TypeError`` naming the valid ones.

    Parameters
    ----------
    settings : object
        What was given as the fit's settings.

    Returns
    -------
    FitSettings
        ``settings``.

    Raises
    ------
    TypeError
        ``settings`` is not a :class:`FitSettings`.
    """
    if not isinstance(settings, FitSettings):
        raise TypeError(
            f"settings must be a fitting config (LinearACE(), PacemakerACE(), MACE()), got "
            f"{settings!r}"
        )
    return settings


def run_code(
    program: str,
    arguments: list[str],
    directory: Path,
    log: Path,
    made: Path,
    env: dict[str, str] | None = None,
) -> None:
    """Run a fitting code's ``program`` (the one beside this Python if there is one, else from
    ``PATH``) in ``directory``, its output into ``log``; a ``RuntimeError`` with the end of
    the log unless it exits 0 and writes ``made``.

    Parameters
    ----------
    program : str
        The program, e.g. ``"pacemaker"``.
    arguments : list of str
        Its arguments.
    directory : pathlib.Path
        Where it runs.
    log : pathlib.Path
        The file its standard output and error go to (overwritten).
    made : pathlib.Path
        The file it must write (the potential).
    env : dict of str to str, optional
        Its environment. Default: ``None``, this process's.

    Raises
    ------
    RuntimeError
        It failed or wrote no ``made`` (the message has the last 20 lines of ``log``).
    """
    beside = Path(sys.executable).parent / program
    command = str(beside) if beside.is_file() else program
    with log.open("w") as handle:
        done = subprocess.run(
            [command, *arguments],
            cwd=directory,
            stdout=handle,
            stderr=subprocess.STDOUT,
            env=os.environ.copy() if env is None else env,
            check=False,
        )
    if done.returncode != 0 or not made.is_file():
        tail = "".join(log.read_text(errors="replace").splitlines(True)[-20:])
        raise RuntimeError(
            f"{program} failed (exit {done.returncode}) in {directory}; the end of "
            f"{log.name}:\n{tail}"
        )
