"""Small frozen configs that build ASE calculators where they run.

A config is hashable, picklable and cheap to send to another process; the calculator itself is
built there, on first use, by :meth:`CalculatorConfig.build` (or cached per process by
:func:`get_calculator`). Energies and forces enter the pipeline only through these.
"""

from __future__ import annotations

import importlib
import threading
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ase.calculators.calculator import BaseCalculator

from ..validation import check_real

__all__ = [
    "EMT",
    "CalculatorConfig",
    "ImportedCalculator",
    "LennardJones",
    "Morse",
    "get_calculator",
]


class CalculatorConfig(ABC):
    """How to build one ASE calculator; subclasses are frozen dataclasses.

    A config is hashable, picklable and cheap to send to another process; the calculator it
    describes is built where it runs, by :meth:`build` (or once per process and thread by
    :func:`get_calculator`). Subclasses implement :meth:`build` and may override :meth:`check`
    and :meth:`modules`.
    """

    @abstractmethod
    def build(self) -> BaseCalculator:
        """A new calculator instance.

        Returns
        -------
        ase.calculators.calculator.BaseCalculator
            A fresh ASE calculator, sharing no state with any other.
        """

    def check(self) -> None:
        """Raise a clear error now if :meth:`build` cannot work (default: nothing to check).

        Raises
        ------
        Exception
            In subclasses: an error naming what is missing or wrong (e.g. ``ImportError`` for a
            package that is not installed); the base class raises nothing.
        """
        return None

    def modules(self) -> tuple[str, ...]:
        """Modules whose import dominates :meth:`build` (seconds for torch-based potentials).

        Worker processes may import them ahead of the work
        (:func:`~assyst_nodes.runtime.fanout.warm_workers`).

        Returns
        -------
        tuple of str
            Importable module names; default: none (an empty tuple).
        """
        return ()


@dataclass(frozen=True)
class EMT(CalculatorConfig):
    """ASE's effective-medium theory for Al, Cu, Ag, Au, Ni, Pd, Pt (and H, C, N, O).

    Takes no parameters: ``EMT()``. Energies in eV, forces in eV/Å, stress in eV/Å^3.
    ``str(EMT())`` is ``"emt"``.
    """

    def build(self) -> BaseCalculator:
        from ase.calculators.emt import EMT as _EMT

        return _EMT()

    def __str__(self) -> str:
        return "emt"


@dataclass(frozen=True)
class Morse(CalculatorConfig):
    """ASE's pair Morse potential, the same for all element pairs.

    The defaults are the reference implementation's (``assyst.calculators.Morse()``:
    ``epsilon=1.0``, ``r0=1.0``, ``rho0=1.0``, ASE's cutoffs), so ``Morse()`` and
    ``Morse(r0=...)`` give its energies; for a metal such as Cu set them, e.g.
    ``Morse(epsilon=0.3, r0=2.6, rho0=5.0)``.

    Parameters
    ----------
    epsilon : float, default 1.0
        Well depth (eV), > 0.
    r0 : float, default 1.0
        Distance of the energy minimum (Å), > 0.
    rho0 : float, default 1.0
        Dimensionless stiffness of the well, > 0.
    rcut1 : float, default 1.9
        Start of the smooth cutoff, in units of ``r0`` (ASE's default); ``0 < rcut1 < rcut2``.
    rcut2 : float, default 2.7
        End of the smooth cutoff, in units of ``r0`` (ASE's default): pairs farther apart than
        ``rcut2 * r0`` do not interact.

    Raises
    ------
    TypeError
        If a parameter is not a real number (a bool is not).
    ValueError
        If ``epsilon``, ``r0`` or ``rho0`` is not > 0, or not ``0 < rcut1 < rcut2``.

    Notes
    -----
    ``str()`` gives ``morse(epsilon=..., r0=..., rho0=...)``.
    """

    epsilon: float = 1.0
    r0: float = 1.0
    rho0: float = 1.0
    rcut1: float = 1.9
    rcut2: float = 2.7

    def __post_init__(self) -> None:
        for name in ("epsilon", "r0", "rho0", "rcut1", "rcut2"):
            check_real(f"Morse.{name}", getattr(self, name))
        for name in ("epsilon", "r0", "rho0"):
            if not getattr(self, name) > 0:
                raise ValueError(f"Morse.{name} must be > 0, got {getattr(self, name)!r}")
        if not 0 < self.rcut1 < self.rcut2:
            raise ValueError(
                f"Morse needs 0 < rcut1 < rcut2 (units of r0), got {self.rcut1}, {self.rcut2}"
            )

    def build(self) -> BaseCalculator:
        from ase.calculators.morse import MorsePotential

        return MorsePotential(
            epsilon=self.epsilon, r0=self.r0, rho0=self.rho0, rcut1=self.rcut1, rcut2=self.rcut2
        )

    def __str__(self) -> str:
        return f"morse(epsilon={self.epsilon}, r0={self.r0}, rho0={self.rho0})"


@dataclass(frozen=True)
class LennardJones(CalculatorConfig):
    """ASE's Lennard-Jones potential, the same for all element pairs.

    Parameters
    ----------
    sigma : float, default 2.3
        Length scale σ (Å), > 0: the pair energy is zero at σ, minimal at 2^(1/6) σ.
    epsilon : float, default 0.1
        Well depth (eV), > 0.
    rc : float, optional
        Cutoff radius (Å), > 0. Default: ``None``, 3 ``sigma``.
    ro : float, optional
        Distance (Å) from which the pair energy is smoothly switched off when ``smooth``.
        Default: ``None``, ASE's choice (0.66 ``rc``).
    smooth : bool, default False
        ``True``: switch the pair energy smoothly to zero between ``ro`` and ``rc`` (energy and
        forces continuous); ``False``: shift it to zero at ``rc`` (forces jump there).

    Raises
    ------
    TypeError
        If ``sigma`` or ``epsilon``, or ``rc`` or ``ro`` when given, is not a real number.
    ValueError
        If ``sigma`` or ``epsilon`` is not > 0, or ``rc`` is given and not > 0 Å.

    Notes
    -----
    ``str()`` gives ``lennard_jones(sigma=..., epsilon=...)``.
    """

    sigma: float = 2.3
    epsilon: float = 0.1
    rc: float | None = None
    ro: float | None = None
    smooth: bool = False

    def __post_init__(self) -> None:
        for name in ("sigma", "epsilon", "rc", "ro"):
            if name in ("sigma", "epsilon") or getattr(self, name) is not None:
                check_real(f"LennardJones.{name}", getattr(self, name))
        for name in ("sigma", "epsilon"):
            if not getattr(self, name) > 0:
                raise ValueError(f"LennardJones.{name} must be > 0, got {getattr(self, name)!r}")
        if self.rc is not None and not self.rc > 0:
            raise ValueError(f"LennardJones.rc must be > 0 Å or None, got {self.rc!r}")

    def build(self) -> BaseCalculator:
        from ase.calculators.lj import LennardJones as _LJ

        return _LJ(
            sigma=self.sigma, epsilon=self.epsilon, rc=self.rc, ro=self.ro, smooth=self.smooth
        )

    def __str__(self) -> str:
        return f"lennard_jones(sigma={self.sigma}, epsilon={self.epsilon})"


class _FrozenMapping(tuple):
    """A dict frozen to sorted ``(key, value)`` pairs; thawed back to a dict on build."""

    __slots__ = ()


def _freeze(value: Any) -> Any:
    if isinstance(value, Mapping):
        return _FrozenMapping(sorted((str(k), _freeze(v)) for k, v in value.items()))
    if isinstance(value, list | tuple):
        return tuple(_freeze(v) for v in value)
    if isinstance(value, set | frozenset):
        return frozenset(_freeze(v) for v in value)
    return value


def _thaw(value: Any) -> Any:
    if isinstance(value, _FrozenMapping):
        return {k: _thaw(v) for k, v in value}
    if isinstance(value, tuple):
        return tuple(_thaw(v) for v in value)
    return value


@dataclass(frozen=True)
class ImportedCalculator(CalculatorConfig):
    """Any ASE calculator from an import path and keyword arguments.

    Parameters
    ----------
    path : str
        The calculator class or factory function, as ``"package.module.Name"`` or
        ``"package.module:Name"`` (e.g. ``"mace.calculators:mace_mp"``,
        ``"ase.calculators.vasp:Vasp"``). Nothing is imported when the config is made; see
        :meth:`check`.
    kwargs : mapping of str to object, optional
        Keyword arguments passed to it. Dicts and lists in ``kwargs`` are frozen (sorted
        pairs, tuples) so the config stays hashable; :attr:`keyword_arguments` gives them back
        as a plain dict. Default: none (an empty mapping).

    Raises
    ------
    ValueError
        If ``path`` is not a non-empty string.

    Notes
    -----
    ``str()`` gives ``path(key=value, ...)``. :meth:`build` raises ``ImportError`` when the
    module or name cannot be imported and ``TypeError`` when the target does not return an ASE
    calculator.
    """

    path: str
    kwargs: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.path, str) or not self.path.strip():
            raise ValueError(
                f"ImportedCalculator.path must be 'module.Name' or 'module:Name', got {self.path!r}"
            )
        object.__setattr__(self, "kwargs", _freeze(dict(self.kwargs)))

    @property
    def keyword_arguments(self) -> dict[str, Any]:
        """``kwargs`` as a plain dict."""
        return _thaw(self.kwargs)

    def _target(self) -> Any:
        module_name, sep, attribute = self.path.partition(":")
        if not sep:
            module_name, _, attribute = self.path.rpartition(".")
        if not module_name or not attribute:
            raise ValueError(
                f"calculator path {self.path!r} must be 'module.Name' or 'module:Name'"
            )
        try:
            module = importlib.import_module(module_name)
        except ImportError as error:
            raise ImportError(
                f"calculator path {self.path!r}: cannot import module {module_name!r} ({error}); "
                "give 'module:Name' or 'module.Name' of an installed module, e.g. "
                "'ase.calculators.emt:EMT'"
            ) from error
        try:
            return getattr(module, attribute)
        except AttributeError:
            raise ImportError(
                f"calculator path {self.path!r}: module {module_name!r} has no {attribute!r}; "
                "give 'module:Name' of a calculator class or factory it defines"
            ) from None

    def modules(self) -> tuple[str, ...]:
        module_name, sep, _ = self.path.partition(":")
        return (module_name if sep else self.path.rpartition(".")[0],)

    def check(self) -> None:
        """Import the target now; raise ``ImportError`` naming the path if that fails.

        Raises
        ------
        ValueError
            If ``path`` is not of the form ``module.Name`` or ``module:Name``.
        ImportError
            If the module cannot be imported or has no such name (the message names the path).
        TypeError
            If the name is not callable.
        """
        target = self._target()
        if not callable(target):
            raise TypeError(f"calculator path {self.path!r} names {target!r}, not a callable")

    def build(self) -> BaseCalculator:
        calculator = self._target()(**self.keyword_arguments)
        if not isinstance(calculator, BaseCalculator):
            raise TypeError(
                f"calculator path {self.path!r} returned {type(calculator).__name__}, "
                "not an ASE calculator"
            )
        return calculator

    def __str__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.keyword_arguments.items())
        return f"{self.path}({args})"


_MAX_CACHED = 8
_local = threading.local()


def _cached(config: CalculatorConfig) -> BaseCalculator:
    """The calculator of ``config``, built once per thread (an ASE calculator keeps the state
    of its last calculation, so two threads must not share one), at most eight kept."""
    cache: dict[CalculatorConfig, BaseCalculator] | None = getattr(_local, "calculators", None)
    if cache is None:
        cache = _local.calculators = {}
    if config not in cache:
        if len(cache) >= _MAX_CACHED:
            cache.pop(next(iter(cache)))
        cache[config] = config.build()
    return cache[config]


def get_calculator(
    calculator: CalculatorConfig | BaseCalculator, cache: bool = True
) -> BaseCalculator:
    """The calculator a config describes; a live ASE calculator is returned as it is.

    Parameters
    ----------
    calculator : CalculatorConfig or ase.calculators.calculator.BaseCalculator
        A config (``EMT()``, ``Morse(...)``, ``ImportedCalculator(...)``, ...) or a live ASE
        calculator.
    cache : bool, default True
        ``True``: build a config's calculator once per process and thread and reuse it (an ASE
        calculator keeps the state of its last calculation, so two threads never share one;
        at most eight are kept per thread); ``False``: build a new one every call.

    Returns
    -------
    ase.calculators.calculator.BaseCalculator
        The calculator of the config, or ``calculator`` itself if it is a live calculator.

    Raises
    ------
    TypeError
        If ``calculator`` is neither a :class:`CalculatorConfig` nor an ASE calculator.
    """
    if isinstance(calculator, BaseCalculator):
        return calculator
    if not isinstance(calculator, CalculatorConfig):
        raise TypeError(
            f"calculator must be a CalculatorConfig (EMT(), Morse(...), ImportedCalculator(...)) "
            f"or an ASE calculator, not {type(calculator).__name__}"
        )
    return _cached(calculator) if cache else calculator.build()
