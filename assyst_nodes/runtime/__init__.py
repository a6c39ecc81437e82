"""Where and how the stages run: fan-out over local processes and executors
(:mod:`~assyst_nodes.runtime.fanout`, :mod:`~assyst_nodes.runtime.executors`), wall-clock limits
(:mod:`~assyst_nodes.runtime.deadline`) and progress bars (:mod:`~assyst_nodes.runtime.progress`).
:mod:`~assyst_nodes.runtime.futures_internals` is the one adapter for ``concurrent.futures``'
internals."""
