"""Validate stage: a calculator (e.g. a fitted potential) against a reference on a held-out
suite.

The suite (:class:`Suite`) holds E-V curves of many phases and ordered compounds, the
elastic constants, phonons and a vacancy of each element's cubic ground state, and MD
snapshots of a solid and a liquid random alloy. :func:`reference_suite` builds and labels it
once with the reference calculator; :func:`validate` compares any number of calculators with
that :class:`SuiteReference` and gives a :class:`Validation`: energy (meV/atom) and force
(meV/Å) errors per group and per domain (``near``: the elements' fcc phases; ``transfer``:
the rest), property errors (V0 in Å^3/atom, B0 and elastic constants in GPa, phonons in THz,
vacancy formation energy in eV) and the raw predictions for figures
(:mod:`assyst_nodes.plot.validation`).

Example (see ``docs/stages/validate.md``)::

    from assyst_nodes.calculators import EMT, Morse

    reference = reference_suite(Suite(("Cu", "Ag")), EMT())     # once, about 10 s
    validate(Morse(epsilon=0.3, r0=2.6, rho0=5.0), reference).summary()

Modules: :mod:`.suite` (what the suite holds, the crystal builders), :mod:`.compute` (the
calculations with one calculator), :mod:`.reference` (:func:`reference_suite`,
:func:`overlaps`), :mod:`.result` (:func:`validate`, :class:`Validation`).
"""

from .reference import SuiteReference, calculator_name, overlaps, reference_suite
from .result import (
    DOMAINS,
    ERROR_COLUMNS,
    PROPERTY_COLUMNS,
    UNITS,
    Validation,
    validate,
    validate_against,
)
from .suite import COMPOUNDS, CUBIC, LIQUID_EXPANSION, PHASES, Subject, Suite

__all__ = [
    "COMPOUNDS",
    "CUBIC",
    "DOMAINS",
    "ERROR_COLUMNS",
    "LIQUID_EXPANSION",
    "PHASES",
    "PROPERTY_COLUMNS",
    "UNITS",
    "Subject",
    "Suite",
    "SuiteReference",
    "Validation",
    "calculator_name",
    "overlaps",
    "reference_suite",
    "validate",
    "validate_against",
]
