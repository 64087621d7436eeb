"""Comparison of a run with a baseline: quality measures against tolerances, latency by a
statistical test. Pure (no pytest); the plugin and the ``quantgate`` command are its views."""
