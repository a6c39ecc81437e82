"""Fitted potentials as calculator configs: the output of the fit stage, input of the others.

A fitted potential is a file (pacemaker's ACE ``.yaml``, MACE's ``.model``); its config holds
the path and the file's sha256, so it is hashable, picklable and equal only for the same
potential, and labels computed with it are keyed by its content, not its path. The calculator
is built where it runs (a worker, a SLURM node), from the path, which must be reachable there;
a file changed since the config was made is refused, by its digest.

``ACEPotential`` adds the isolated atoms' energies back: ACE is fitted to energies with them
subtracted (pacemaker's ``energy_corrected``), so its calculator alone predicts on that scale.
MACE keeps its ``E0s`` in the model; its energies are total energies already.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

from ase.calculators.calculator import BaseCalculator
from ase.data import atomic_numbers

from . import CalculatorConfig

__all__ = ["ACE_INSTALL_HINT", "ACEPotential", "MACEPotential", "file_digest", "torch_device"]

ACE_INSTALL_HINT: Final[str] = 'pip install "assyst_nodes[ace]"'
MACE_INSTALL_HINT: Final[str] = 'pip install "assyst_nodes[fit]" (in an environment without [mlip])'


def file_digest(path: str | os.PathLike[str]) -> str:
    """The sha256 (hex) of a file's content.

    Parameters
    ----------
    path : str or os.PathLike
        The file.

    Returns
    -------
    str
        64 hexadecimal digits.

    Raises
    ------
    FileNotFoundError
        ``path`` is not a file (the message names it).
    """
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"no potential file at {str(file)!r}")
    digest = hashlib.sha256()
    with file.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _path_and_digest(config: Any, kind: str) -> None:
    """Check ``config.path``, make it absolute, and set ``config.digest`` from the file if empty."""
    path = config.path
    if not isinstance(path, str | os.PathLike) or not str(path).strip():
        raise ValueError(f"{kind}.path must be the path of a potential file, got {path!r}")
    object.__setattr__(config, "path", str(Path(path).expanduser().absolute()))
    digest = config.digest
    if not isinstance(digest, str) or (digest and len(digest) != 64):
        raise ValueError(f"{kind}.digest must be '' or a sha256 of 64 hex digits, got {digest!r}")
    if not digest:
        object.__setattr__(config, "digest", file_digest(config.path))


def _check_unchanged(config: Any) -> None:
    """A ``ValueError`` if the file at ``config.path`` is not the one the config was made for."""
    found = file_digest(config.path)
    if found != config.digest:
        raise ValueError(
            f"the potential file {config.path!r} changed since its config was made (sha256 "
            f"{found[:12]}..., expected {config.digest[:12]}...): make the config again from "
            "the file, or restore it"
        )


def _frozen_energies(values: Mapping[str, float] | tuple[tuple[str, float], ...]) -> tuple:
    """``values`` as sorted ``(element, energy)`` pairs; a ``ValueError`` naming a bad one."""
    pairs = values.items() if isinstance(values, Mapping) else values
    frozen = []
    for pair in pairs:
        try:
            element, energy = pair
        except (TypeError, ValueError):
            raise ValueError(
                f"reference_energies must map elements to energies (eV), got {values!r}"
            ) from None
        if element not in atomic_numbers:
            raise ValueError(f"reference_energies: {element!r} is not a chemical element")
        if isinstance(energy, bool) or not isinstance(energy, int | float):
            raise TypeError(
                f"reference_energies[{element!r}] must be a number of eV, got {energy!r}"
            )
        if not math.isfinite(energy):
            raise ValueError(f"reference_energies[{element!r}] must be finite, got {energy!r}")
        frozen.append((str(element), float(energy)))
    return tuple(sorted(frozen))


def torch_device(device: str) -> str:
    """The torch device ``device`` names: ``"auto"`` is ``"cuda"`` where torch sees a GPU.

    Parameters
    ----------
    device : str
        ``"auto"``, ``"cpu"``, ``"cuda"`` (or ``"cuda:N"``) or ``"mps"``.

    Returns
    -------
    str
        The device to use.
    """
    if device != "auto":
        return device
    try:
        import torch
    except ImportError:
        return "cpu"
    return "cuda" if torch.cuda.is_available() else "cpu"


def _check_device(kind: str, device: object) -> None:
    if not isinstance(device, str) or not (
        device in ("auto", "cpu", "cuda", "mps") or device.startswith("cuda:")
    ):
        raise ValueError(
            f"{kind}.device must be 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps', got {device!r}"
        )


@dataclass(frozen=True)
class ACEPotential(CalculatorConfig):
    """An ACE potential file (pacemaker's YAML), evaluated with pyace's ``PyACECalculator``.

    Parameters
    ----------
    path : str or os.PathLike
        The potential file (``.yaml``, as pacemaker and :class:`~assyst_nodes.stages.fit.LinearACE`
        write it). Made absolute; it must be readable where the calculator is built.
    reference_energies : mapping of str to float, optional
        The energy of one isolated atom of each element (eV), added back to the potential's
        energies (it was fitted to energies with them subtracted). Default: empty, none added
        (a potential fitted to total energies). Stored as sorted pairs.
    digest : str, optional
        The sha256 of the file; default ``""``: read from the file now. The calculator is only
        built from a file with this digest.

    Raises
    ------
    FileNotFoundError
        No file at ``path`` (and no ``digest`` given).
    ValueError, TypeError
        A bad path, digest or reference energy (the message names it).

    Notes
    -----
    ``str()`` gives ``ace(<file name>, sha256=<first 12 digits>)``; equal configs describe the
    same potential with the same reference energies. Energies in eV, forces in eV/Å, stress in
    eV/Å^3. Needs the extra ``ace`` (python-ace).
    """

    path: str
    reference_energies: Mapping[str, float] | tuple[tuple[str, float], ...] = field(
        default_factory=dict
    )
    digest: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "reference_energies", _frozen_energies(self.reference_energies))
        _path_and_digest(self, "ACEPotential")

    @property
    def energies(self) -> dict[str, float]:
        """The reference energies as a dict (element to eV)."""
        return dict(self.reference_energies)

    def modules(self) -> tuple[str, ...]:
        return ("pyace",)

    def check(self) -> None:
        """Raise now if pyace is missing or the file changed (see :meth:`build`).

        Raises
        ------
        ImportError
            python-ace is not installed (the message says how to install it).
        ValueError
            The file at ``path`` is not the one the config was made for.
        """
        _import_pyace()
        _check_unchanged(self)

    def build(self) -> BaseCalculator:
        self.check()
        return _referenced_ace(self.path, self.energies)

    def __str__(self) -> str:
        return f"ace({Path(self.path).name}, sha256={self.digest[:12]})"


def _import_pyace() -> Any:
    try:
        import pyace
    except ImportError as error:
        raise ImportError(f"ACE potentials need python-ace: {ACE_INSTALL_HINT} ({error})") from None
    return pyace


def _referenced_ace(path: str, energies: dict[str, float]) -> BaseCalculator:
    """pyace's calculator of ``path``, with the isolated atoms' ``energies`` added back."""
    from pyace import PyACECalculator

    class ReferencedACECalculator(PyACECalculator):  # type: ignore[misc]
        """pyace's ``PyACECalculator`` plus the reference energy of each atom (eV)."""

        def calculate(self, *args: Any, **kwargs: Any) -> None:
            super().calculate(*args, **kwargs)
            symbols = self.atoms.get_chemical_symbols()
            missing = sorted(set(symbols) - set(energies)) if energies else []
            if missing:
                raise ValueError(
                    f"the ACE potential {path!r} has no reference energy for {missing}; it has "
                    f"{sorted(energies)}"
                )
            per_atom = [energies.get(s, 0.0) for s in symbols]
            shift = float(sum(per_atom))
            for key in ("energy", "free_energy"):
                if key in self.results:
                    self.results[key] = self.results[key] + shift
            if "energies" in self.results:
                self.results["energies"] = self.results["energies"] + per_atom

    return ReferencedACECalculator(path)


DType = Literal["float64", "float32"]


@dataclass(frozen=True)
class MACEPotential(CalculatorConfig):
    """A MACE model file, evaluated with mace-torch's ``MACECalculator``.

    Parameters
    ----------
    path : str or os.PathLike
        The model (``.model``, as ``mace_run_train`` writes it). Made absolute; it must be
        readable where the calculator is built.
    device : str, default "auto"
        ``"auto"`` (a GPU where torch sees one, else the CPU), ``"cpu"``, ``"cuda"``,
        ``"cuda:N"`` or ``"mps"``.
    dtype : {"float64", "float32"}, default "float64"
        Precision of the evaluation (MACE's ``default_dtype``).
    digest : str, optional
        The sha256 of the file; default ``""``: read from the file now.

    Raises
    ------
    FileNotFoundError
        No file at ``path`` (and no ``digest`` given).
    ValueError
        A bad path, digest, device or dtype (the message names it).

    Notes
    -----
    ``str()`` gives ``mace(<file name>, sha256=<first 12 digits>)``: the device and precision
    are how it runs, not which potential it is. MACE keeps its isolated-atom energies (``E0s``)
    in the model: energies are total energies. Needs the extra ``fit`` (mace-torch).
    """

    path: str
    device: str = "auto"
    dtype: DType = "float64"
    digest: str = ""

    def __post_init__(self) -> None:
        _check_device("MACEPotential", self.device)
        if self.dtype not in ("float64", "float32"):
            raise ValueError(
                f"MACEPotential.dtype must be 'float64' or 'float32', got {self.dtype!r}"
            )
        _path_and_digest(self, "MACEPotential")

    def modules(self) -> tuple[str, ...]:
        return ("mace.calculators",)

    def check(self) -> None:
        """Raise now if mace-torch is missing or the file changed.

        Raises
        ------
        ImportError
            mace-torch is not installed (the message says how to install it).
        ValueError
            The file at ``path`` is not the one the config was made for.
        """
        try:
            import mace.calculators  # noqa: F401
        except ImportError as error:
            raise ImportError(
                f"MACE potentials need mace-torch: {MACE_INSTALL_HINT} ({error})"
            ) from None
        _check_unchanged(self)

    def build(self) -> BaseCalculator:
        self.check()
        from mace.calculators import MACECalculator

        # a MACE model is a pickled torch module: torch >= 2.6 loads it only with
        # weights_only=False, which mace asks for by setting this variable when it is imported;
        # set here for the load only (a test or a user may have put the variable back since)
        key = "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"
        before = os.environ.get(key)
        os.environ[key] = "1"
        try:
            return MACECalculator(
                model_paths=self.path, device=torch_device(self.device), default_dtype=self.dtype
            )
        finally:
            if before is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = before

    def __str__(self) -> str:
        return f"mace({Path(self.path).name}, sha256={self.digest[:12]})"
