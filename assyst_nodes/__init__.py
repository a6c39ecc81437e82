"""ASSYST training sets for machine-learning interatomic potentials.

The core stages are plain Python on :class:`ase.Atoms` (``crystals``, ``relaxations``,
``perturbations``, ``filters``); the node and project layers build on them. Importing the package
itself is cheap: submodules are imported where they are used.
"""

__version__ = "0.1.0"
