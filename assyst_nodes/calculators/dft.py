"""Plane-wave DFT with GPAW as a calculator config: reference labels for periodic crystals.

:class:`GPAW` describes one PAW plane-wave calculation (cutoff in eV, Brillouin-zone sampling
as a k-point *density*, Fermi-Dirac smearing, functional, SCF limits). The same config gives
cells of any size the same sampling: the Monkhorst-Pack mesh of each structure follows from its
reciprocal cell (ASE's ``kpts={"density": d}``), so a cell doubled along one axis gets half the
k-points along that axis. Use it like any other config, e.g.
``label(structures, GPAW(cutoff=500, kpoint_density=4.0), workers=2)``; results are energies in
eV, forces in eV/Å and stress in eV/Å^3 (ASE's Voigt order).

Every structure gets a fresh SCF started from atomic densities (no wave functions carried over
from the structure before), so a label depends only on the structure and the config, not on
the order of the structures or how they are chunked over workers.

An SCF that does not converge within ``max_scf_iterations`` is never a label: the calculator
raises :class:`~assyst_nodes.stages.relax.RelaxationError` with reason ``scf_not_converged``
(:data:`SCF_NOT_CONVERGED`), and the stage drops and reports that structure alone.

GPAW is an optional dependency, needing two Debian packages and a C++ build::

    apt-get install -y libxc-dev libopenblas-dev
    CC=g++ pip install gpaw gpaw-data

(with the default ``gcc`` the build fails: a C file includes ``<algorithm>``); ``gpaw-data``
ships the PAW setups (LDA, PBE, RPBE, revPBE) with nothing else to configure.
"""

from __future__ import annotations

import glob
import importlib
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any, ClassVar

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator, all_changes, kpts2sizeandoffsets

from ..lineage import UUID
from ..stages.relax import RelaxationError
from ..validation import check_real
from . import CalculatorConfig

__all__ = ["GPAW", "INSTALL_HINT", "SCF_NOT_CONVERGED", "GPAWCalculator"]

INSTALL_HINT = (
    "apt-get install -y libxc-dev libopenblas-dev, then CC=g++ pip install gpaw gpaw-data "
    "(the C++ compiler is needed: with gcc the build fails on <algorithm>)"
)
"""How to install GPAW and its PAW setups."""

SCF_NOT_CONVERGED = "scf_not_converged"
"""Drop reason of a structure whose SCF did not converge within ``max_scf_iterations``."""


def _import_gpaw() -> ModuleType:
    """The ``gpaw`` module; ``ImportError`` saying how to install it when it is missing."""
    try:
        return importlib.import_module("gpaw")
    except ImportError as error:
        raise ImportError(
            f"the GPAW calculator needs gpaw ({error}); install it with: {INSTALL_HINT}"
        ) from error


def _positive(name: str, value: object, unit: str) -> None:
    """``TypeError``/``ValueError`` naming ``GPAW.<name>`` and ``value`` unless it is a finite
    number > 0 (in ``unit``)."""
    check_real(f"GPAW.{name}", value, f"a number > 0 ({unit})")
    if not (math.isfinite(value) and value > 0):  # type: ignore[operator, arg-type]
        raise ValueError(f"GPAW.{name} must be a finite number > 0 ({unit}), got {value!r}")


@dataclass(frozen=True)
class GPAW(CalculatorConfig):
    """GPAW plane-wave PAW calculation of periodic crystals of any size.

    Energies are GPAW's ``energy`` (extrapolated to zero smearing) and ``free_energy`` (the
    Mermin free energy, of which the forces are the derivatives), in eV; forces in eV/Å,
    stress in eV/Å^3 (ASE's Voigt order).

    Parameters
    ----------
    cutoff : float, default 500.0
        Plane-wave kinetic-energy cutoff (eV), > 0.
    kpoint_density : float, default 4.0
        k-points per Å⁻¹ along each reciprocal vector, > 0 (ASE's ``kpts={"density": d}``:
        mesh size ``ceil(2π |b_i| d)``, 1 along non-periodic axes), so every cell gets the
        same sampling; see :meth:`kpoint_mesh`.
    smearing : float, default 0.1
        Fermi-Dirac width (eV), >= 0; > 0 keeps metals converging.
    xc : str, default "PBE"
        The functional, a GPAW/libxc name, e.g. ``"PBE"``, ``"LDA"``, ``"RPBE"``; PAW setups
        for it must exist (see :meth:`check`).
    spinpol : bool, default False
        Spin-polarised, with initial moments from each structure's ``initial_magmoms`` (all
        zero stays non-magnetic).
    max_scf_iterations : int, default 100
        SCF iterations at most, >= 1. Not converged within them:
        :class:`~assyst_nodes.stages.relax.RelaxationError` with reason
        ``scf_not_converged`` (:data:`SCF_NOT_CONVERGED`).
    energy_tolerance : float, default 5e-4
        The SCF is converged only when the energy changes by less than this (eV per valence
        electron, over the last 3 iterations), > 0; GPAW's default.
    density_tolerance : float, default 1e-4
        The SCF is converged only when the density changes by less than this (electrons per
        valence electron), > 0; GPAW's default.
    force_tolerance : float, optional
        If given, the SCF is converged only when the forces also change by less than this
        (eV/Å, > 0; checked last: forces cost extra). Default: ``None``, forces are not part
        of the criterion (GPAW's default).
    gamma_centered : bool, default True
        Shift each mesh to contain Γ (meshes of a cell and its supercells then fold onto each
        other); ``False``: plain Monkhorst-Pack, without Γ for even sizes.
    threads : int, default 1
        BLAS threads in one calculation, >= 1 (the stages run each worker on one thread; more
        is for one worker per node); GPAW's MPI parallelism is not used.
    txt : str, optional
        GPAW's text log: ``"-"`` for standard output, or a path pattern where ``{uuid}`` and
        ``{formula}`` are filled in per structure (e.g. ``"gpaw/{uuid}.txt"``, relative to the
        worker's working directory, which must exist); a path without them is overwritten by
        each structure. The log is part of the config (and so of its settings key) but not of
        results. Default: ``None``, no log.

    Raises
    ------
    TypeError
        If a number is not a real number, or ``spinpol`` or ``gamma_centered`` is not a bool.
    ValueError
        If ``cutoff``, ``kpoint_density`` or a tolerance is not a finite number > 0,
        ``smearing`` is not finite and >= 0, ``xc`` is empty, ``max_scf_iterations`` or
        ``threads`` is not an int >= 1, or ``txt`` is not ``None``, ``"-"`` or a path pattern
        with only ``{uuid}`` and ``{formula}``.

    Notes
    -----
    ``str()`` gives e.g. ``gpaw(PBE, 500 eV, k 4.0/Å⁻¹, FD 0.1 eV)``, adding what differs from
    the defaults.
    """

    cutoff: float = 500.0
    kpoint_density: float = 4.0
    smearing: float = 0.1
    xc: str = "PBE"
    spinpol: bool = False
    max_scf_iterations: int = 100
    energy_tolerance: float = 5e-4
    density_tolerance: float = 1e-4
    force_tolerance: float | None = None
    gamma_centered: bool = True
    threads: int = 1
    txt: str | None = None

    def __post_init__(self) -> None:
        _positive("cutoff", self.cutoff, "eV")
        _positive("kpoint_density", self.kpoint_density, "k-points per Å⁻¹")
        check_real("GPAW.smearing", self.smearing, "a number >= 0 (eV)")
        if not (math.isfinite(self.smearing) and self.smearing >= 0):
            raise ValueError(f"GPAW.smearing must be a finite width >= 0 eV, got {self.smearing!r}")
        if not isinstance(self.xc, str) or not self.xc.strip():
            raise ValueError(f"GPAW.xc must be a functional name such as 'PBE', got {self.xc!r}")
        for flag in ("spinpol", "gamma_centered"):
            if not isinstance(getattr(self, flag), bool):
                raise TypeError(f"GPAW.{flag} must be True or False, got {getattr(self, flag)!r}")
        for count in ("max_scf_iterations", "threads"):
            value = getattr(self, count)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"GPAW.{count} must be an int >= 1, got {value!r}")
        _positive("energy_tolerance", self.energy_tolerance, "eV per valence electron")
        _positive("density_tolerance", self.density_tolerance, "electrons per valence electron")
        if self.force_tolerance is not None:
            _positive("force_tolerance", self.force_tolerance, "eV/Å")
        if self.txt is not None:
            if not isinstance(self.txt, str) or not self.txt:
                raise ValueError(f"GPAW.txt must be None, '-' or a path pattern, got {self.txt!r}")
            try:
                self.txt.format(uuid="u", formula="f")
            except (KeyError, IndexError, ValueError) as error:
                raise ValueError(
                    f"GPAW.txt {self.txt!r} is not a path pattern with only {{uuid}} and "
                    f"{{formula}} ({type(error).__name__}: {error})"
                ) from None

    # ------------------------------------------------------------------ what GPAW is given
    def kpoint_mesh(self, atoms: Atoms) -> tuple[int, int, int]:
        """The Monkhorst-Pack mesh ``atoms`` gets.

        Parameters
        ----------
        atoms : ase.Atoms
            The structure; its cell and pbc decide the mesh.

        Returns
        -------
        tuple of int
            ``ceil(2π |b_i| kpoint_density)`` points along each periodic reciprocal vector
            ``b_i`` (Å⁻¹ / 2π), 1 along non-periodic ones.
        """
        size, _ = kpts2sizeandoffsets(density=self.kpoint_density, gamma=self._gamma(), atoms=atoms)
        return (int(size[0]), int(size[1]), int(size[2]))

    def _gamma(self) -> bool | None:
        return True if self.gamma_centered else None

    def gpaw_parameters(self) -> dict[str, Any]:
        """The keyword arguments of ``gpaw.GPAW`` this config stands for (without ``txt``).

        Returns
        -------
        dict of str to object
            ``mode``, ``xc``, ``kpts``, ``occupations``, ``spinpol``, ``maxiter`` and
            ``convergence``.
        """
        convergence: dict[str, float] = {
            "energy": self.energy_tolerance,
            "density": self.density_tolerance,
        }
        if self.force_tolerance is not None:
            convergence["forces"] = self.force_tolerance
        kpts: dict[str, Any] = {"density": self.kpoint_density}
        if self.gamma_centered:
            kpts["gamma"] = True
        return {
            "mode": {"name": "pw", "ecut": self.cutoff},
            "xc": self.xc,
            "kpts": kpts,
            "occupations": {"name": "fermi-dirac", "width": self.smearing},
            "spinpol": self.spinpol,
            "maxiter": self.max_scf_iterations,
            "convergence": convergence,
        }

    def log_path(self, atoms: Atoms | None = None) -> str | None:
        """Where GPAW writes its log for ``atoms``.

        Parameters
        ----------
        atoms : ase.Atoms, optional
            The structure computed. Default: ``None``, ``"none"`` for both fields.

        Returns
        -------
        str or None
            ``txt`` with ``{uuid}`` (the structure's uuid, ``"none"`` without one) and
            ``{formula}`` filled in; ``"-"`` for standard output; ``None``: no log.
        """
        if self.txt is None or self.txt == "-":
            return self.txt
        uid = "none" if atoms is None else str(atoms.info.get(UUID, "none"))
        formula = "none" if atoms is None else atoms.get_chemical_formula()
        return self.txt.format(uuid=uid, formula=formula)

    def gpaw_calculator(self, atoms: Atoms | None = None) -> Any:
        """A new live GPAW calculator (GPAW's own ASE interface) with these settings.

        It raises no ``scf_not_converged`` (that is :class:`GPAWCalculator`'s job).

        Parameters
        ----------
        atoms : ase.Atoms, optional
            The structure it will compute: it logs to :meth:`log_path` of ``atoms``. Default:
            ``None``.

        Returns
        -------
        gpaw.GPAW
            GPAW's calculator.

        Raises
        ------
        ImportError
            Saying how to install GPAW when it is missing.
        """
        gpaw = _import_gpaw()
        return gpaw.GPAW(**self.gpaw_parameters(), txt=self.log_path(atoms))

    # ------------------------------------------------------------------ CalculatorConfig
    def check(self) -> None:
        """Raise a clear error now if a calculation cannot start.

        A single element without a setup still fails per structure.

        Raises
        ------
        ImportError
            Saying how to install GPAW when it is missing.
        ValueError
            Naming ``xc`` when GPAW does not know the functional.
        FileNotFoundError
            Naming the setup paths when no PAW setups for the functional are installed.
        """
        gpaw = _import_gpaw()
        from gpaw.xc import XC

        try:
            setup_name = XC(self.xc).get_setup_name()
        except (NameError, KeyError, ValueError, TypeError) as error:
            raise ValueError(
                f"GPAW.xc {self.xc!r} is not a functional GPAW knows ({error})"
            ) from None
        paths = [str(path) for path in gpaw.setup_paths]
        found = any(
            glob.glob(os.path.join(path, f"*.{setup_name}"))
            or glob.glob(os.path.join(path, f"*.{setup_name}.gz"))
            for path in paths
        )
        if not found:
            raise FileNotFoundError(
                f"no GPAW PAW setups for xc {self.xc!r} (files '<element>.{setup_name}[.gz]') in "
                f"the setup paths {paths or '(none)'}; install the standard ones with "
                f"`pip install gpaw-data` (LDA, PBE, RPBE, revPBE), generate others with "
                f"`gpaw-setup -f {self.xc} <elements>`, or point GPAW_SETUP_PATH at a directory "
                "holding them"
            )

    def modules(self) -> tuple[str, ...]:
        return ("gpaw", "gpaw.calculator")

    def build(self) -> GPAWCalculator:
        """A new :class:`GPAWCalculator` of this config.

        Returns
        -------
        GPAWCalculator
            The ASE calculator.

        Raises
        ------
        ImportError
            When gpaw is missing (it is imported here).
        """
        _import_gpaw()
        return GPAWCalculator(self)

    def __str__(self) -> str:
        parts = [
            self.xc,
            f"{self.cutoff:g} eV",
            f"k {float(self.kpoint_density)}/Å⁻¹" + ("" if self.gamma_centered else " MP"),
            f"FD {float(self.smearing)} eV",
        ]
        if self.spinpol:
            parts.append("spin")
        defaults = GPAW.__dataclass_fields__
        if self.max_scf_iterations != defaults["max_scf_iterations"].default:
            parts.append(f"scf <= {self.max_scf_iterations}")
        if (self.energy_tolerance, self.density_tolerance) != (
            defaults["energy_tolerance"].default,
            defaults["density_tolerance"].default,
        ):
            parts.append(f"dE {self.energy_tolerance:g} eV/e, dn {self.density_tolerance:g} e/e")
        if self.force_tolerance is not None:
            parts.append(f"dF {self.force_tolerance:g} eV/Å")
        if self.threads != 1:
            parts.append(f"{self.threads} threads")
        return f"gpaw({', '.join(parts)})"


class GPAWCalculator(Calculator):
    """ASE calculator running GPAW as :class:`GPAW` describes, one fresh SCF per structure.

    Energy (eV) and free energy (eV) are always computed; forces (eV/Å) and stress (eV/Å^3)
    when asked for, from the same SCF. A new structure (any change of numbers, positions, cell
    or pbc) starts a new GPAW calculation from atomic densities. Usually made by
    :meth:`GPAW.build`.

    Parameters
    ----------
    config : GPAW
        The settings of every calculation.

    Raises
    ------
    ~assyst_nodes.stages.relax.RelaxationError
        From a calculation: GPAW's ``ConvergenceError`` (``KohnShamConvergenceError`` when
        ``max_scf_iterations`` is reached) becomes a ``RelaxationError`` with reason
        ``scf_not_converged``; after any failure the next call starts afresh.
    """

    implemented_properties: ClassVar[list[str]] = ["energy", "free_energy", "forces", "stress"]
    name = "gpaw"

    def __init__(self, config: GPAW) -> None:
        super().__init__()
        self.config = config
        self.gpaw: Any = None
        """GPAW's live calculator of the current structure (``None`` before and after a
        failure): its ``get_bz_k_points()``, ``get_number_of_iterations()`` etc. are there."""

    def calculate(
        self,
        atoms: Atoms | None = None,
        properties: Sequence[str] | None = None,
        system_changes: Sequence[str] | None = None,
    ) -> None:
        """Compute energy and free energy, plus forces and stress if in ``properties``.

        Parameters
        ----------
        atoms : ase.Atoms, optional
            The structure (default: ``None``, the one of the last call).
        properties : sequence of str, optional
            Properties asked for, of ``energy``, ``free_energy``, ``forces``, ``stress``.
            Default: ``None``, ``["energy"]``.
        system_changes : sequence of str, optional
            What changed since the last call (ASE's names); any change starts a new SCF.
            Default: ``None``, everything (ASE's ``all_changes``).

        Returns
        -------
        None
            The results are in ``self.results`` (eV, eV/Å, eV/Å^3).

        Raises
        ------
        ~assyst_nodes.stages.relax.RelaxationError
            With reason ``scf_not_converged`` when the SCF does not converge.
        """
        properties = ["energy"] if properties is None else list(properties)
        system_changes = list(all_changes) if system_changes is None else list(system_changes)
        super().calculate(atoms, properties, system_changes)
        from gpaw import ConvergenceError
        from threadpoolctl import threadpool_limits

        if system_changes or self.gpaw is None:
            self.gpaw = None  # let the old calculation go before the new one starts
            self.gpaw = self.config.gpaw_calculator(self.atoms)
        wanted = ["energy", "free_energy", *(p for p in ("forces", "stress") if p in properties)]
        try:
            with threadpool_limits(limits=self.config.threads):
                for name in wanted:
                    if name not in self.results:
                        value = self.gpaw.get_property(name, self.atoms)
                        self.results[name] = (
                            float(value) if np.ndim(value) == 0 else np.array(value, dtype=float)
                        )
        except ConvergenceError as error:
            self.gpaw = None
            raise RelaxationError(
                f"GPAW SCF not converged within max_scf_iterations="
                f"{self.config.max_scf_iterations} ({type(error).__name__}"
                f"{': ' + str(error) if str(error) else ''})",
                reason=SCF_NOT_CONVERGED,
            ) from error
        except BaseException:
            self.gpaw = None
            raise
