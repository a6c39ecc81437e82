"""What computed a stage's result: the versions of the packages its code and its calculators
run on.

A project keys stored results by their stage, settings and input, and by
:func:`computed_with`: after an upgrade of ASE, pyxtal, a potential's package (sevenn, torch,
mace) or of this package, a rerun computes again instead of mixing old results with new ones.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.metadata
from collections.abc import Iterator, Mapping
from typing import Any, Final

from .calculators import CalculatorConfig

__all__ = ["BASE_PACKAGES", "STAGE_PACKAGES", "calculators_in", "computed_with"]

BASE_PACKAGES: Final[tuple[str, ...]] = ("assyst_nodes", "ase", "numpy")
"""Distributions every stage's result depends on."""

STAGE_PACKAGES: Final[Mapping[str, tuple[str, ...]]] = {
    "sample": ("pyxtal", "spglib"),
    "relax": ("scipy",),
    "label": ("scipy",),
    "filter": ("matscipy", "spglib"),
}
"""Further distributions of each stage's own code (a stage not named here uses only
:data:`BASE_PACKAGES`)."""


def calculators_in(value: Any) -> Iterator[CalculatorConfig]:
    """Every calculator config inside ``value``.

    Parameters
    ----------
    value : object
        Anything: searched recursively.

    Yields
    ------
    CalculatorConfig
        ``value`` itself if it is a config; else the configs in the fields of a dataclass
        instance (a relax setting's ``calculator``), in the values of a mapping and in the
        items of a list or tuple, depth first, in order.
    """
    if isinstance(value, CalculatorConfig):
        yield value
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for item in dataclasses.fields(value):
            yield from calculators_in(getattr(value, item.name))
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from calculators_in(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from calculators_in(item)


def computed_with(stage: str, settings: Mapping[str, Any]) -> dict[str, str]:
    """The versions of the distributions that compute ``stage`` with ``settings``.

    Parameters
    ----------
    stage : str
        The stage (``sample``, ``relax``, ``label``, ``perturb``, ``filter``, ``combine``).
    settings : mapping
        The stage's settings; every calculator config inside them adds ASE and the
        distributions of the modules it imports (e.g. ``sevenn`` and ``torch`` for SevenNet).

    Returns
    -------
    dict of str to str
        Distribution name to installed version (``"not installed"`` for a module that no
        installed distribution provides), sorted by name.
    """
    names = set(BASE_PACKAGES) | set(STAGE_PACKAGES.get(stage, ()))
    for config in calculators_in(settings):
        names.add("ase")
        for module in config.modules():
            names.add(_distribution_of(module.partition(".")[0]))
    return {name: _version(name) for name in sorted(names)}


@functools.cache
def _distribution_of(top_level: str) -> str:
    """The installed distribution that provides top-level module ``top_level`` (itself if
    none does, e.g. a module on ``sys.path`` only)."""
    found = importlib.metadata.packages_distributions().get(top_level)
    return sorted(found)[0] if found else top_level


@functools.cache
def _version(distribution: str) -> str:
    """The installed version of ``distribution``."""
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"
