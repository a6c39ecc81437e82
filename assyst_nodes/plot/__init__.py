"""Figures of a training set: distributions of volume, energy, distances, sizes, cells and more.

Core layer: needs only matplotlib, numpy, pandas and ase. Every figure function builds a
:class:`matplotlib.figure.Figure` directly (no ``pyplot`` and no global state), so it works
headless and from threads; save it with ``fig.savefig("x.png")`` or show it in a notebook.

``data`` is an iterable of :class:`ase.Atoms` (a generator is consumed once) or a
:class:`pandas.DataFrame` as made by :func:`features` (the project layer's structure table has
the same column names). A DataFrame missing a column a figure needs raises ``ValueError``
naming it. Empty input gives a figure saying "no structures"; a quantity without any finite
value (e.g. no energies because nothing was calculated) gives an axis saying so.
"""

from .drawing import LABEL_WIDTH
from .features import COLUMNS, MAX_GROUPS, SCATTER_LIMIT, features
from .figures import (
    FIGURES,
    concentration_histogram,
    energy_distance,
    energy_histogram,
    energy_volume,
    lattice_angles,
    lattice_parameters,
    min_distance_histogram,
    natoms_histogram,
    overview,
    save_figures,
    spacegroup_distribution,
    stage_counts,
    volume_histogram,
)

__all__ = [
    "COLUMNS",
    "FIGURES",
    "LABEL_WIDTH",
    "MAX_GROUPS",
    "SCATTER_LIMIT",
    "concentration_histogram",
    "energy_distance",
    "energy_histogram",
    "energy_volume",
    "features",
    "lattice_angles",
    "lattice_parameters",
    "min_distance_histogram",
    "natoms_histogram",
    "overview",
    "save_figures",
    "spacegroup_distribution",
    "stage_counts",
    "volume_histogram",
]
