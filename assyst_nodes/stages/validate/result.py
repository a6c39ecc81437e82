"""The test half of a validation: a calculator against a :class:`SuiteReference`
(:func:`validate`), and what it gives (:class:`Validation`)."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import pandas as pd
from ase.calculators.calculator import BaseCalculator

from ...calculators import CalculatorConfig, get_calculator
from . import compute
from .reference import (
    SuiteReference,
    calculator_name,
    element_properties,
    label,
    reference_suite,
)
from .suite import Suite, at_volume, prototype

__all__ = [
    "DOMAINS",
    "ERROR_COLUMNS",
    "PROPERTY_COLUMNS",
    "UNITS",
    "Validation",
    "validate",
    "validate_against",
]

DOMAINS: Final[tuple[str, str]] = ("near", "transfer")
"""``near``: the elements' fcc phases (E-V curves and rattled cells: what a hand-made set of
fcc ground states covers) and the properties of fcc ground states but the vacancy;
``transfer``: everything else."""

ERROR_COLUMNS: Final[tuple[str, ...]] = (
    "group", "domain", "structures", "failed", "atoms",
    "energy_rmse", "energy_mae", "force_rmse", "force_mae",
)
"""Columns of :attr:`Validation.errors`; energies in meV/atom, forces in meV/Å."""

PROPERTY_COLUMNS: Final[tuple[str, ...]] = (
    "property", "subject", "reference", "test", "error", "unit", "domain",
)
"""Columns of :attr:`Validation.properties`; ``error`` is test - reference."""

UNITS: Final[dict[str, str]] = {
    "V0": "Å^3/atom", "E0": "eV/atom", "B0": "GPa", "C11": "GPa", "C12": "GPa", "C44": "GPa",
    "phonon_rmse": "THz", "max_frequency": "THz", "vacancy_energy": "eV",
}
"""The unit of each property of :attr:`Validation.properties`."""

_STRUCTURE_FLOATS = ("volume", "reference_energy", "test_energy")
_FORCES = ("reference_forces", "test_forces")


@dataclass(frozen=True, eq=False)
class Validation:
    """Errors of a calculator against the reference on a held-out suite (:func:`validate`).

    Picklable; :meth:`to_dict` gives plain JSON-able types and :meth:`from_dict` takes them
    back. Energies are compared per atom as they are: both calculators must be on the same
    absolute scale (a fitted potential with its isolated-atom energies added back is).

    Parameters
    ----------
    calculator : str
        Name of the calculator under test.
    reference : str
        Name of the reference calculator.
    suite : Suite
        The suite compared on.
    errors : pandas.DataFrame
        One row per group (``"ev:fcc:Cu"``, ``"ev:L1_2:Cu3Ag"``, ``"rattle:fcc:Cu"``,
        ``"vacancy:Cu"``,
        ``"md:solid"``, ``"md:liquid"``, ...) then ``"near"``, ``"transfer"`` and ``"all"``;
        columns :data:`ERROR_COLUMNS`: ``structures`` in the group, ``failed`` (either
        calculator failed or gave NaN; left out of the errors), ``atoms`` compared, energy
        RMSE and MAE per atom (meV/atom), force RMSE and MAE over force components (meV/Å).
    properties : pandas.DataFrame
        Columns :data:`PROPERTY_COLUMNS`: ``V0``, ``E0``, ``B0`` of every crystal; ``C11``,
        ``C12``, ``C44``, ``phonon_rmse`` (reference 0), ``max_frequency`` and
        ``vacancy_energy`` of each element's ground state, each calculator at its own
        equilibrium; units in :data:`UNITS`. NaN where a calculation failed.
    structures : pandas.DataFrame
        One row per suite structure: ``group``, ``subject``, ``domain``, ``atoms``,
        ``volume`` (Å^3/atom), ``reference_energy`` and ``test_energy`` (eV/atom),
        ``failed``, ``reference_forces`` and ``test_forces`` (arrays, eV/Å).
    phonons : dict of str to dict, optional
        Ground-state subject (``"fcc:Cu"``) to ``labels``, ``special_x``, ``x`` (path
        coordinate of the reference, 1/Å) and ``reference`` and ``test`` frequencies
        (q-points x bands, THz). Default: none (an empty dict).
    failures : tuple of tuple of str, optional
        ``(where, message)`` of each failed calculation, the reference's first. Default: none.
    seconds : float, default 0.0
        Wall time of :func:`validate` (s).
    """

    calculator: str
    reference: str
    suite: Suite
    errors: pd.DataFrame
    properties: pd.DataFrame
    structures: pd.DataFrame
    phonons: dict[str, dict[str, Any]] = field(default_factory=dict)
    failures: tuple[tuple[str, str], ...] = ()
    seconds: float = 0.0

    def __str__(self) -> str:
        s = self.summary()
        return (f"validation of {self.calculator} against {self.reference} on {self.suite}: "
                f"energy RMSE {s['energy_rmse_all']:.3g} meV/atom, force RMSE "
                f"{s['force_rmse_all']:.3g} meV/Å, {s['failed']} failed")

    def summary(self) -> dict[str, float]:
        """Headline numbers.

        Returns
        -------
        dict of str to float
            ``energy_rmse_<d>`` (meV/atom) and ``force_rmse_<d>`` (meV/Å) for ``d`` in near,
            transfer, all; ``failed`` (structures); ``mae_<property>`` the mean absolute
            error of each property over its subjects (units of :data:`UNITS`; NaN where none
            was computed); ``properties_failed``: properties the reference has and the
            calculator under test does not (e.g. no equilibrium found), left out of the
            means, so a failing potential is not mistaken for an accurate one.
        """
        rows = self.errors.set_index("group")
        out: dict[str, float] = {}
        for kind in ("energy_rmse", "force_rmse"):
            for domain in (*DOMAINS, "all"):
                out[f"{kind}_{domain}"] = float(rows.loc[domain, kind])
        out["failed"] = int(rows.loc["all", "failed"])
        reference = self.properties["reference"].to_numpy(dtype=float)
        test = self.properties["test"].to_numpy(dtype=float)
        out["properties_failed"] = int(np.sum(np.isfinite(reference) & ~np.isfinite(test)))
        for name in UNITS:
            errors = self.properties.loc[self.properties["property"] == name, "error"]
            values = np.abs(errors.to_numpy(dtype=float))
            finite = values[np.isfinite(values)]
            out[f"mae_{name}"] = float(finite.mean()) if finite.size else math.nan
        return out

    def ev_curves(self) -> pd.DataFrame:
        """The E-V points of every crystal.

        Returns
        -------
        pandas.DataFrame
            ``subject``, ``domain``, ``volume`` (Å^3/atom), ``reference_energy`` and
            ``test_energy`` (eV/atom), in suite order.
        """
        frame = self.structures[self.structures["group"].str.startswith("ev:")]
        columns = ["subject", "domain", "volume", "reference_energy", "test_energy"]
        return frame[columns].reset_index(drop=True)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able types (NaN as ``None``); :meth:`from_dict` takes them back.

        Returns
        -------
        dict
            ``calculator``, ``reference``, ``suite``, ``errors``, ``properties``,
            ``structures`` (each a dict of column lists), ``phonons``, ``failures``,
            ``seconds``.
        """
        return {
            "calculator": self.calculator,
            "reference": self.reference,
            "suite": self.suite.to_dict(),
            "errors": _plain(self.errors.to_dict(orient="list")),
            "properties": _plain(self.properties.to_dict(orient="list")),
            "structures": _plain(self.structures.to_dict(orient="list")),
            "phonons": _plain(self.phonons),
            "failures": [list(f) for f in self.failures],
            "seconds": float(self.seconds),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Validation:
        """The validation of :meth:`to_dict` (also after a JSON round trip).

        Parameters
        ----------
        data : dict
            As :meth:`to_dict` gives it.

        Returns
        -------
        Validation
            Equal in every table and array to the one that gave ``data``.
        """
        errors = pd.DataFrame(data["errors"], columns=list(ERROR_COLUMNS))
        for column in ERROR_COLUMNS[5:]:
            errors[column] = errors[column].astype(float)
        properties = pd.DataFrame(data["properties"], columns=list(PROPERTY_COLUMNS))
        for column in ("reference", "test", "error"):
            properties[column] = properties[column].astype(float)
        structures = pd.DataFrame(data["structures"])
        for column in _STRUCTURE_FLOATS:
            structures[column] = structures[column].astype(float)
        for column in _FORCES:
            structures[column] = [np.array(f, dtype=float) for f in structures[column]]
        phonons = {
            subject: {key: (np.array(value, dtype=float) if key in ("x", "reference", "test")
                            else value) for key, value in bands.items()}
            for subject, bands in data["phonons"].items()
        }
        return cls(
            calculator=data["calculator"],
            reference=data["reference"],
            suite=Suite.from_dict(data["suite"]),
            errors=errors,
            properties=properties,
            structures=structures,
            phonons=phonons,
            failures=tuple((str(a), str(b)) for a, b in data["failures"]),
            seconds=float(data["seconds"]),
        )


def _plain(value: Any) -> Any:
    """``value`` with numpy types, tuples and NaN turned into JSON's (NaN -> None)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    return value


def _error_row(group: str, domain: str, rows: pd.DataFrame) -> dict[str, Any]:
    ok = rows[~rows["failed"]]
    de = (ok["test_energy"] - ok["reference_energy"]).to_numpy(dtype=float) * 1000
    if len(ok):
        df = np.concatenate([(t - r).ravel() for r, t in
                             zip(ok["reference_forces"], ok["test_forces"], strict=True)]) * 1000
    else:
        df = np.zeros(0)

    def rmse(x: np.ndarray) -> float:
        return float(np.sqrt(np.mean(x**2))) if x.size else math.nan

    def mae(x: np.ndarray) -> float:
        return float(np.mean(np.abs(x))) if x.size else math.nan

    return {"group": group, "domain": domain, "structures": len(rows),
            "failed": int(rows["failed"].sum()), "atoms": int(ok["atoms"].sum()),
            "energy_rmse": rmse(de), "energy_mae": mae(de),
            "force_rmse": rmse(df), "force_mae": mae(df)}


def error_table(structures: pd.DataFrame) -> pd.DataFrame:
    """The :attr:`Validation.errors` of a :attr:`Validation.structures` table."""
    rows = [_error_row(group, str(part["domain"].iloc[0]), part)
            for group, part in structures.groupby("group", sort=False)]
    for domain in DOMAINS:
        rows.append(_error_row(domain, domain, structures[structures["domain"] == domain]))
    rows.append(_error_row("all", "all", structures))
    return pd.DataFrame(rows, columns=list(ERROR_COLUMNS))


def validate(calculator: CalculatorConfig | BaseCalculator, reference: SuiteReference
             ) -> Validation:
    """Compare ``calculator`` with the reference on the suite of ``reference``.

    Energies (per atom) and forces on every suite structure; V0, E0, B0 from the
    calculator's own Birch-Murnaghan fit on the reference's E-V volumes; elastic constants,
    phonons and vacancy of each element's ground state (the reference's choice of phase) at
    the calculator's own V0. A calculation that fails (raises, or gives NaN) is recorded
    (``failed``, ``failures``, NaN in the tables) and the rest goes on.

    Parameters
    ----------
    calculator : CalculatorConfig or ase.calculators.calculator.BaseCalculator
        The calculator under test, e.g. a fitted potential.
    reference : SuiteReference
        The suite labelled with the reference (:func:`reference_suite`).

    Returns
    -------
    Validation
        The error tables, the properties and the raw predictions.

    Raises
    ------
    TypeError
        ``reference`` is not a :class:`SuiteReference` or ``calculator`` not a calculator.
    """
    if not isinstance(reference, SuiteReference):
        raise TypeError(f"reference must be a SuiteReference (reference_suite(...)), got "
                        f"{type(reference).__name__}")
    start = time.perf_counter()
    live = get_calculator(calculator)
    suite = reference.suite
    failures: list[tuple[str, str]] = []
    structures = list(reference.structures)
    energies, forces = label(live, structures, failures)
    failed = ~np.isfinite(energies) | ~np.isfinite(reference.energies)
    table = pd.DataFrame({
        "group": [a.info["group"] for a in structures],
        "subject": [a.info["subject"] for a in structures],
        "domain": [a.info["domain"] for a in structures],
        "atoms": [len(a) for a in structures],
        "volume": [a.get_volume() / len(a) for a in structures],
        "reference_energy": np.asarray(reference.energies, dtype=float),
        "test_energy": energies,
        "failed": failed,
        "reference_forces": list(reference.forces),
        "test_forces": forces,
    })
    rows: list[dict[str, Any]] = []

    def add(name: str, subject: str, ref: float, test: float, domain: str) -> None:
        rows.append({"property": name, "subject": subject, "reference": ref, "test": test,
                     "error": test - ref, "unit": UNITS[name], "domain": domain})

    own_volume: dict[str, float] = {}
    structure_of = {sub.label: (sub.structure, sub.symbols) for sub in suite.subjects()}
    for subject, ref_eos in reference.properties["eos"].items():
        part = table[table["group"] == f"ev:{subject}"]
        volumes = part["volume"].to_numpy(dtype=float)
        fit = compute.fit_eos(volumes, part["test_energy"].to_numpy(dtype=float))
        if len(part) and not volumes.min() <= fit[0] <= volumes.max():
            # the calculator's minimum lies outside the reference's window: find its own
            proto = prototype(*structure_of[subject])
            fit = compute.fit_eos(*compute.find_equilibrium(
                live, proto, ref_eos["V0"] if math.isfinite(ref_eos["V0"]) else volumes.mean(),
                suite, at_volume))
        test_eos = dict(zip(("V0", "E0", "B0"), fit, strict=True))
        if not math.isfinite(test_eos["V0"]):
            failures.append((f"eos:{subject}", "no equilibrium (Birch-Murnaghan fit failed)"))
        own_volume[subject] = test_eos["V0"]
        domain = str(part["domain"].iloc[0]) if len(part) else "transfer"
        for name in ("V0", "E0", "B0"):
            add(name, subject, ref_eos[name], test_eos[name], domain)
    phonons: dict[str, dict[str, Any]] = {}
    for element, phase in reference.properties["ground_state"].items():
        subject = f"{phase}:{element}"
        domain = "near" if phase == "fcc" else "transfer"
        results = element_properties(live, suite, element, phase, own_volume[subject], failures)
        ref_elastic = reference.properties["elastic"].get(element)
        if suite.elastic and ref_elastic is not None:
            test_elastic = results.get("elastic", {})
            for name in ("C11", "C12", "C44"):
                add(name, subject, ref_elastic[name], test_elastic.get(name, math.nan), domain)
        ref_bands = reference.properties["phonons"].get(element)
        if suite.phonons and ref_bands is not None:
            ref_f = np.asarray(ref_bands["frequencies"], dtype=float)
            test_bands = results.get("phonons")
            test_f = (np.asarray(test_bands["frequencies"], dtype=float) if test_bands
                      else np.full_like(ref_f, math.nan))
            add("phonon_rmse", subject, 0.0, float(np.sqrt(np.mean((test_f - ref_f) ** 2))),
                domain)
            add("max_frequency", subject, float(ref_f.max()), float(test_f.max()), domain)
            phonons[subject] = {"labels": list(ref_bands["labels"]),
                                "special_x": list(ref_bands["special_x"]),
                                "x": np.asarray(ref_bands["x"], dtype=float),
                                "reference": ref_f, "test": test_f}
        ref_vacancy = reference.properties["vacancy"].get(element)
        if suite.vacancy_repeat and ref_vacancy is not None:
            add("vacancy_energy", subject, ref_vacancy, results.get("vacancy", math.nan),
                "transfer")
    return Validation(
        calculator=calculator_name(calculator),
        reference=reference.reference,
        suite=suite,
        errors=error_table(table),
        properties=pd.DataFrame(rows, columns=list(PROPERTY_COLUMNS)),
        structures=table,
        phonons=phonons,
        failures=tuple(reference.failures) + tuple(failures),
        seconds=time.perf_counter() - start,
    )


def validate_against(calculator: CalculatorConfig | BaseCalculator,
                     reference_calculator: CalculatorConfig | BaseCalculator,
                     suite: Suite) -> Validation:
    """:func:`reference_suite` with ``reference_calculator``, then :func:`validate`, in one call.

    To validate several calculators against one reference, call :func:`reference_suite`
    once and :func:`validate` for each instead.

    Parameters
    ----------
    calculator : CalculatorConfig or ase.calculators.calculator.BaseCalculator
        The calculator under test.
    reference_calculator : CalculatorConfig or ase.calculators.calculator.BaseCalculator
        The reference (e.g. ``EMT()``).
    suite : Suite
        What to compare on.

    Returns
    -------
    Validation
        As :func:`validate` gives it.
    """
    return validate(calculator, reference_suite(suite, reference_calculator))
