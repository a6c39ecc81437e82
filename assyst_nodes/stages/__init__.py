"""The ASSYST stages, one module each, plain Python on :class:`ase.Atoms` (no pyiron import):

- :mod:`~assyst_nodes.stages.sample`: random symmetric crystals (pyxtal), ``sample()``;
- :mod:`~assyst_nodes.stages.relax`: relaxations with an ASE calculator, ``relax()``;
- :mod:`~assyst_nodes.stages.perturb`: rattle and stretch clouds, ``perturb()``;
- :mod:`~assyst_nodes.stages.filter`: distance, aspect, volume, energy and force filters,
  ``filter()``;
- :mod:`~assyst_nodes.stages.label`: single points with a reference calculator, ``label()``.

:mod:`~assyst_nodes.stages.pyxtal_speedup` is the one adapter for pyxtal's internals.
"""
