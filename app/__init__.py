"""Headwater: an OpenLineage metadata service compatible with the Marquez REST API."""

__version__ = "0.1.0"
