"""Diagnostics: the checks that name why a backend fails (see docs/diagnostics.md)."""
