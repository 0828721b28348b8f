"""Helpers shared by tests and benchmarks: plain modules imported by name
(conftest files hold fixtures only and are never imported)."""
