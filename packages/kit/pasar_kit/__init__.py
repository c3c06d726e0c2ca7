"""Shared infrastructure for the pasar services.

Infrastructure only: no service's domain model lives here, so no service depends on
another's internals.
"""
