"""ASSYST training sets for machine-learning interatomic potentials.

The core stages are plain Python on :class:`ase.Atoms` (:mod:`assyst_nodes.stages`: sample,
relax, perturb, filter, label); the node and project layers build on them. Importing the
package itself is cheap: submodules are imported where they are used. Module paths of earlier
versions (``assyst_nodes.relaxations``, ...) keep working (:mod:`assyst_nodes.moved`).
"""

from . import moved as _moved

__version__ = "0.3.0"
"""The package version (pyproject.toml reads it from here)."""

_moved.install()
