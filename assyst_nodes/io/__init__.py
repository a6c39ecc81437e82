"""Files the training set goes to: extended XYZ (:mod:`~assyst_nodes.io.extxyz`) and the
fitting codes' formats (:mod:`~assyst_nodes.io.fitting`)."""
