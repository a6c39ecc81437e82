"""MACE fits with mace-torch's ``mace_run_train``, on a GPU where torch sees one."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ...calculators import CalculatorConfig
from ...calculators.fitted import MACE_INSTALL_HINT, MACEPotential, _check_device, torch_device
from ...io.fitting import Prepared, write_prepared_extxyz
from ..weights import Weights  # noqa: F401 - the inherited fields' annotations resolve here
from .base import FitSettings, check_positive_int, check_positive_number, frozen_options, run_code
from .data import TrainingData

__all__ = ["MACE"]


@dataclass(frozen=True)
class MACE(FitSettings):
    """A MACE potential trained by ``mace_run_train`` (mace-torch).

    The training file holds the isolated atoms as ``IsolatedAtom`` frames, from which MACE
    takes its ``E0s``; energies under ``REF_energy``, forces ``REF_forces``, stress
    ``REF_stress`` (fitted with ``stress=True``), each structure's weight as
    ``config_weight``. ``str()`` gives ``mace(channels=32, max_L=1, r_max=5, epochs=100,
    seed=0)``.

    Parameters
    ----------
    weights : Weights or None, default Weights()
        Weights per origin and limits (:class:`~assyst_nodes.stages.weights.Weights`);
        ``None``: every structure weighs 1.
    energy : {"free_energy", "energy"}, default "free_energy"
        The labelled energy fitted.
    seed : int, default 0
        MACE's ``--seed``.
    channels : int, default 32
        ``--num_channels``.
    max_L : int, default 1
        ``--max_L`` (0, 1, 2 or 3).
    correlation : int, default 3
        ``--correlation`` (body order minus one).
    interactions : int, default 2
        ``--num_interactions``.
    r_max : float, default 5.0
        Cutoff (Å).
    epochs : int, default 100
        ``--max_num_epochs``.
    batch_size : int, default 10
        ``--batch_size`` (and ``--valid_batch_size``).
    learning_rate : float, default 0.01
        ``--lr``.
    stress : bool, default True
        Fit the stress too (``--loss stress``); ``False``: MACE's default loss (energies and
        forces).
    valid_fraction : float, default 0.1
        Share of the training structures MACE holds out when no validation structures are
        given (``--valid_fraction``), 0 < f < 1.
    device : str, default "auto"
        Where to train: ``"auto"`` (a GPU where torch sees one, else the CPU), ``"cpu"``,
        ``"cuda"``, ``"cuda:N"``, ``"mps"``. The potential is evaluated on ``"auto"``.
    dtype : {"float64", "float32"}, default "float64"
        ``--default_dtype`` (float32 trains faster on a GPU).
    options : mapping of str to object, optional
        Further ``mace_run_train`` options without the dashes (e.g. ``{"ema": True}`` gives
        ``--ema``, ``{"forces_weight": 10}`` gives ``--forces_weight 10``); ``False`` or
        ``None`` leave a flag out.

    Raises
    ------
    TypeError, ValueError
        A field of the wrong type or out of range (the message names it).

    Notes
    -----
    Needs mace-torch (the extra ``fit``, in an environment without ``mlip``: mace-torch
    0.3.16 pins e3nn 0.4.4, SevenNet needs 0.5). On SLURM, send the fit to a GPU partition
    through an executor whose resources ask for one (see ``docs/cluster.md``).
    """

    channels: int = 32
    max_L: int = 1
    correlation: int = 3
    interactions: int = 2
    r_max: float = 5.0
    epochs: int = 100
    batch_size: int = 10
    learning_rate: float = 0.01
    stress: bool = True
    valid_fraction: float = 0.1
    device: str = "auto"
    dtype: Literal["float64", "float32"] = "float64"
    options: Mapping[str, Any] | tuple = field(default_factory=tuple)

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("channels", "correlation", "interactions", "epochs", "batch_size"):
            check_positive_int("MACE", name, getattr(self, name))
        check_positive_int("MACE", "max_L", self.max_L, minimum=0)
        if self.max_L > 3:
            raise ValueError(f"MACE.max_L must be 0, 1, 2 or 3, got {self.max_L!r}")
        check_positive_number("MACE", "r_max", self.r_max)
        check_positive_number("MACE", "learning_rate", self.learning_rate)
        check_positive_number("MACE", "valid_fraction", self.valid_fraction, at_most=0.99)
        if not isinstance(self.stress, bool):
            raise TypeError(f"MACE.stress must be True or False, got {self.stress!r}")
        _check_device("MACE", self.device)
        if self.dtype not in ("float64", "float32"):
            raise ValueError(f"MACE.dtype must be 'float64' or 'float32', got {self.dtype!r}")
        object.__setattr__(self, "options", frozen_options("MACE", self.options))

    @property
    def code(self) -> str:
        return "mace"

    def __str__(self) -> str:
        return (
            f"mace(channels={self.channels}, max_L={self.max_L}, r_max={self.r_max:g}, "
            f"epochs={self.epochs}, seed={self.seed})"
        )

    def check(self) -> None:
        try:
            import mace  # noqa: F401
        except ImportError as error:
            raise ImportError(f"MACE fits need mace-torch: {MACE_INSTALL_HINT} ({error})") from None

    def arguments(self, train_file: str, valid_file: str | None) -> list[str]:
        """``mace_run_train``'s arguments (after the command).

        Parameters
        ----------
        train_file : str
            The training extxyz file.
        valid_file : str or None
            The validation file; ``None``: ``--valid_fraction``.

        Returns
        -------
        list of str
            The arguments.
        """
        args = [
            "--name", "potential", "--seed", str(self.seed), "--work_dir", ".",
            "--train_file", train_file,
            "--energy_key", "REF_energy", "--forces_key", "REF_forces",
            "--stress_key", "REF_stress",
            "--model", "MACE", "--num_channels", str(self.channels),
            "--max_L", str(self.max_L), "--correlation", str(self.correlation),
            "--num_interactions", str(self.interactions), "--r_max", str(self.r_max),
            "--max_num_epochs", str(self.epochs), "--batch_size", str(self.batch_size),
            "--valid_batch_size", str(self.batch_size), "--lr", str(self.learning_rate),
            "--device", torch_device(self.device), "--default_dtype", self.dtype,
        ]  # fmt: skip
        if valid_file is None:
            args += ["--valid_fraction", str(self.valid_fraction)]
        else:
            args += ["--valid_file", valid_file]
        if self.stress:
            args += ["--loss", "stress", "--error_table", "PerAtomRMSEstressvirials"]
        for key, value in self.options:
            if value is True:
                args.append(f"--{key}")
            elif value is not False and value is not None:
                args += [f"--{key}", str(value)]
        return args

    def train(
        self, train: TrainingData, validation: TrainingData | None, directory: Path
    ) -> tuple[CalculatorConfig, list[Path]]:
        train_file = directory / "train.extxyz"
        _write(train, train_file, self.energy)
        valid_file = None
        if validation is not None and validation.structures:
            valid_file = directory / "validation.extxyz"
            _write(validation, valid_file, self.energy, isolated=False)
        log = directory / "mace.log"
        model = directory / "potential.model"
        arguments = self.arguments(train_file.name, valid_file and valid_file.name)
        run_code("mace_run_train", arguments, directory, log, model)
        return MACEPotential(model, device="auto", dtype=self.dtype), [model, log]


def _write(data: TrainingData, path: Path, energy: str, isolated: bool = True) -> None:
    """``data`` as MACE's extxyz (the weights as ``config_weight``; isolated atoms weigh 1)."""
    extra = data.isolated if isolated else []
    prepared = Prepared(
        data.structures + extra,
        np.concatenate([data.weights, np.ones(len(extra))]),
        0,
        0,
        data.references,
    )
    write_prepared_extxyz(prepared, path, energy=energy)  # type: ignore[arg-type]
