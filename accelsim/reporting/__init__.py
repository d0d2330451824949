"""Reports: the documented examples recomputed (``accelsim report``), with plots (``accelsim[plot]``)."""
