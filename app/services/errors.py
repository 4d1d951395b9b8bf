"""Errors the services raise; the API turns them into Marquez-shaped responses."""


class NotFound(Exception):
    """404: e.g. "Namespace 'x' not found." (Marquez's wording)."""
