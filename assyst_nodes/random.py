"""Reproducible random streams: plain integer seeds in, :class:`numpy.random.Generator` out.

Every random entry point of the package takes ``rng: int | numpy.random.Generator | None`` and
reduces it once to a plain non-negative ``int`` base seed (:func:`resolve_seed`). Each structure
then draws from its own stream, derived from the base seed and that structure's identity
(:func:`stream`), so a stage's output is the same bit for bit whatever order the structures are
processed in and however many workers process them.
"""

from __future__ import annotations

import hashlib
import secrets

import numpy as np

__all__ = ["MAX_SEED", "RngLike", "derive_seed", "resolve_seed", "stream"]

RngLike = int | np.random.Generator | None
"""What every random entry point accepts: a seed, a live generator, or ``None`` (fresh entropy)."""

MAX_SEED = 2**63 - 1
"""Largest base seed; seeds are non-negative and fit a signed 64 bit integer (HDF5, SQL, extxyz)."""


def resolve_seed(rng: RngLike) -> int:
    """Reduce ``rng`` to a plain base seed in ``[0, MAX_SEED]``.

    Parameters
    ----------
    rng : int, numpy.random.Generator or None
        - ``int`` (also a numpy integer): used as it is (``bool`` and negative numbers are
          rejected);
        - ``numpy.random.Generator``: one number is drawn from it, so the generator advances;
        - ``None``: fresh operating-system entropy; record the returned seed to reproduce the
          run.

    Returns
    -------
    int
        The base seed, in ``[0, MAX_SEED]``.

    Raises
    ------
    TypeError
        If ``rng`` is none of the above (e.g. a bool, a float or a ``RandomState``).
    ValueError
        If an int seed lies outside ``[0, 2**63 - 1]``.
    """
    if rng is None:
        return secrets.randbits(63)
    if isinstance(rng, np.random.Generator):
        return int(rng.integers(0, MAX_SEED, endpoint=True))
    if isinstance(rng, bool) or not isinstance(rng, int | np.integer):
        raise TypeError(
            f"rng must be an int seed, a numpy.random.Generator or None, not {rng!r} "
            f"({type(rng).__name__})"
        )
    seed = int(rng)
    if not 0 <= seed <= MAX_SEED:
        raise ValueError(f"rng seed must be an integer in [0, 2**63 - 1], got {seed}")
    return seed


def _key_word(part: object) -> int:
    """Map one identity part to a non-negative integer, stable across processes and runs."""
    if isinstance(part, int | np.integer) and not isinstance(part, bool) and 0 <= part < 2**64:
        return int(part)
    digest = hashlib.blake2b(repr(part).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little")


def derive_seed(seed: int, *identity: object) -> int:
    """A seed in ``[0, MAX_SEED]`` derived from a base ``seed`` and an identity.

    Equal inputs give equal seeds in any process; different identities give independent
    streams (numpy ``SeedSequence``).

    Parameters
    ----------
    seed : int
        The base seed, in ``[0, MAX_SEED]`` (checked as by :func:`resolve_seed`).
    *identity : object
        Any sequence of ints and objects with a stable ``repr`` (strings, tuples of ints ...),
        e.g. ``derive_seed(7, "pyxtal", "Cu2Ag1", 225, 0)``.

    Returns
    -------
    int
        The derived seed, in ``[0, MAX_SEED]``.

    Raises
    ------
    TypeError, ValueError
        If ``seed`` is not a valid base seed (see :func:`resolve_seed`).
    """
    # the length goes first: SeedSequence treats trailing zero words as absent ([s] == [s, 0]);
    # every value takes exactly two 32 bit words (numpy would split an int into as many words as
    # it needs, so that e.g. (2**32, 5) and (0, 1 + 5 * 2**32) gave the same words)
    values = [resolve_seed(seed), len(identity), *(_key_word(part) for part in identity)]
    words = np.array([w for v in values for w in (v & 0xFFFFFFFF, v >> 32)], dtype=np.uint32)
    state = np.random.SeedSequence(words).generate_state(2, dtype=np.uint32)
    return int((int(state[0]) << 32 | int(state[1])) & MAX_SEED)


def stream(seed: int, *identity: object) -> np.random.Generator:
    """The random generator of one identity under one base seed (see :func:`derive_seed`).

    Parameters
    ----------
    seed : int
        The base seed, in ``[0, MAX_SEED]``.
    *identity : object
        What the stream belongs to: ints and objects with a stable ``repr``.

    Returns
    -------
    numpy.random.Generator
        A new generator seeded with ``derive_seed(seed, *identity)``.
    """
    return np.random.default_rng(derive_seed(seed, *identity))
