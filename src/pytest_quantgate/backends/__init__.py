"""Backends: one runner per runtime behind one protocol (base.Runner); kinds in registry."""
