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
    """How to build one ASE calculator; subclasses are frozen dataclasses."""

    @abstractmethod
    def build(self) -> BaseCalculator:
        """A new calculator instance."""

    def check(self) -> None:
        """Raise a clear error now if :meth:`build` cannot work (default: nothing to check)."""
        return None

    def modules(self) -> tuple[str, ...]:
        """Modules whose import dominates :meth:`build` (seconds for torch-based potentials),
        which worker processes may import ahead of the work
        (:func:`~assyst_nodes.runtime.fanout.warm_workers`); default: none."""
        return ()


@dataclass(frozen=True)
class EMT(CalculatorConfig):
    """ASE's effective-medium theory for Al, Cu, Ag, Au, Ni, Pd, Pt (and H, C, N, O)."""

    def build(self) -> BaseCalculator:
        from ase.calculators.emt import EMT as _EMT

        return _EMT()

    def __str__(self) -> str:
        return "emt"


@dataclass(frozen=True)
class Morse(CalculatorConfig):
    """ASE's pair Morse potential, the same for all element pairs.

    ``epsilon`` is the well depth (eV), ``r0`` the minimum distance (Å), ``rho0`` the
    dimensionless stiffness; ``rcut1``/``rcut2`` (in units of ``r0``) bound the smooth cutoff.
    The defaults are the reference implementation's (``assyst.calculators.Morse()``:
    ``epsilon=1.0``, ``r0=1.0``, ``rho0=1.0``, ASE's cutoffs), so ``Morse()`` and
    ``Morse(r0=...)`` give its energies; for a metal such as Cu set them, e.g.
    ``Morse(epsilon=0.3, r0=2.6, rho0=5.0)``.
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
    """ASE's Lennard-Jones potential: ``sigma`` (Å), ``epsilon`` (eV), cutoff ``rc`` (Å,
    ``None`` = 3 sigma), smoothly switched off from ``ro`` when ``smooth``."""

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

    ``path`` names a calculator class or a factory function, as ``"package.module.Name"`` or
    ``"package.module:Name"`` (e.g. ``"mace.calculators:mace_mp"``,
    ``"ase.calculators.vasp:Vasp"``); ``kwargs`` are passed to it. Dicts and lists in ``kwargs``
    are frozen (sorted pairs, tuples) so the config stays hashable.
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
        """Import the target now; raise ``ImportError`` naming the path if that fails."""
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
    """The calculator a config describes (built once per process and thread when ``cache``); a
    live ASE calculator is returned as it is."""
    if isinstance(calculator, BaseCalculator):
        return calculator
    if not isinstance(calculator, CalculatorConfig):
        raise TypeError(
            f"calculator must be a CalculatorConfig (EMT(), Morse(...), ImportedCalculator(...)) "
            f"or an ASE calculator, not {type(calculator).__name__}"
        )
    return _cached(calculator) if cache else calculator.build()
