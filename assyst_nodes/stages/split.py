"""Train / validation / test splits by family, so no seed crystal leaks across parts.

A random split of single structures puts a rattled copy of a crystal in training and another
in validation: the validation error then measures interpolation between near-identical
structures. Here whole families go to one part: a family is a seed crystal, merged across
duplicates (``info["family"]``, set by :func:`~assyst_nodes.stages.label.label`; the ``seed``
where it is absent), so fcc Ag relaxed from five seeds is one family.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

import numpy as np
from ase import Atoms

from ..lineage import SEED, UUID
from ..validation import structure_list
from .isolated import CONFIG_TYPE, ISOLATED_ATOM
from .label import FAMILY

__all__ = ["PARTS", "Split", "family_of", "split"]

PARTS: Final[tuple[str, str, str]] = ("train", "validation", "test")
"""The names of the parts, in order."""


def family_of(structure: Atoms) -> str:
    """The family of ``structure``: ``info["family"]``, else its ``seed``, else its ``uuid``.

    Parameters
    ----------
    structure : ase.Atoms
        A structure of the run.

    Returns
    -------
    str
        The family's name (``""`` for a structure with none of the three keys).
    """
    info = structure.info
    return str(info.get(FAMILY) or info.get(SEED) or info.get(UUID) or "")


@dataclass(frozen=True)
class Split:
    """Fractions of the structures in each part, and the seed that draws the families.

    Parameters
    ----------
    train : float, default 0.8
        Fraction of the structures for training, in (0, 1].
    validation : float, default 0.1
        Fraction for validation (the fitting code's early stopping and model choice), in
        [0, 1).
    test : float, default 0.1
        Fraction held out for testing, in [0, 1).
    seed : int, default 0
        Seed of the order in which the families are dealt out; the same seed gives the same
        split of the same structures, in any order.

    Raises
    ------
    TypeError
        A fraction that is not a number or a seed that is not an int.
    ValueError
        A fraction out of range, or fractions that do not sum to 1.
    """

    train: float = 0.8
    validation: float = 0.1
    test: float = 0.1
    seed: int = 0

    def __post_init__(self) -> None:
        for name in PARTS:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise TypeError(f"Split.{name} must be a fraction, got {value!r}")
            if not math.isfinite(value) or not 0 <= value <= 1:
                raise ValueError(f"Split.{name} must be a fraction in [0, 1], got {value!r}")
            object.__setattr__(self, name, float(value))
        if self.train <= 0:
            raise ValueError(f"Split.train must be > 0, got {self.train!r}")
        total = self.train + self.validation + self.test
        if not math.isclose(total, 1.0, abs_tol=1e-9):
            raise ValueError(
                f"Split fractions must sum to 1, got train={self.train:g} + "
                f"validation={self.validation:g} + test={self.test:g} = {total:g}"
            )
        if isinstance(self.seed, bool) or not isinstance(self.seed, int | np.integer):
            raise TypeError(f"Split.seed must be an int, got {self.seed!r}")
        object.__setattr__(self, "seed", int(self.seed))

    def fractions(self) -> tuple[float, float, float]:
        """The fractions of train, validation and test.

        Returns
        -------
        tuple of float
            ``(train, validation, test)``.
        """
        return self.train, self.validation, self.test


def split(structures: Iterable[Atoms], settings: Split = Split()) -> dict[str, list[Atoms]]:
    """Deal whole families of ``structures`` out to train, validation and test.

    The families (see :func:`family_of`) are dealt out largest first, families of equal size
    in an order drawn with ``settings.seed``; each goes to the part furthest below its share
    of the structures. Isolated atoms (``config_type`` ``IsolatedAtom``) always go to training: they
    are the fitting codes' reference energies, not data to test on.

    Parameters
    ----------
    structures : iterable of ase.Atoms
        The labelled structures.
    settings : Split, default Split()
        Fractions and seed.

    Returns
    -------
    dict of str to list of ase.Atoms
        ``{"train": [...], "validation": [...], "test": [...]}``, each in input order; every
        structure in exactly one part, every family in one part. Parts may miss their share
        where families are large (a part is never split to hit it).

    Raises
    ------
    TypeError
        ``settings`` is not a :class:`Split`, or an item is not ``Atoms``.
    """
    if not isinstance(settings, Split):
        raise TypeError(f"settings must be Split(train=..., ...), got {settings!r}")
    items = structure_list(structures)
    isolated = [a.info.get(CONFIG_TYPE) == ISOLATED_ATOM for a in items]
    sizes: dict[str, int] = {}
    for atoms, alone in zip(items, isolated, strict=True):
        if not alone:
            family = family_of(atoms)
            sizes[family] = sizes.get(family, 0) + 1
    names = sorted(sizes)
    ranks = np.random.default_rng(settings.seed).permutation(len(names))
    # largest families first (so the small ones even out the shares), equal sizes in the
    # seed's random order
    order = sorted(range(len(names)), key=lambda i: (-sizes[names[i]], int(ranks[i])))
    total = sum(sizes.values())
    targets = [fraction * total for fraction in settings.fractions()]
    counts = [0, 0, 0]
    part_of: dict[str, int] = {}
    for position in order:
        name = names[int(position)]
        # the part furthest below its target (in structures); ties: train first
        deficits = [
            target - count if target > 0 else -math.inf
            for target, count in zip(targets, counts, strict=True)
        ]
        chosen = int(np.argmax(deficits))
        part_of[name] = chosen
        counts[chosen] += sizes[name]
    parts: dict[str, list[Atoms]] = {name: [] for name in PARTS}
    for atoms, alone in zip(items, isolated, strict=True):
        index = 0 if alone else part_of[family_of(atoms)]
        parts[PARTS[index]].append(atoms)
    return parts
