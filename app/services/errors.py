"""Errors the services raise; the API turns them into Marquez-shaped responses."""


class NotFound(Exception):
    """404: e.g. "Namespace 'x' not found." (Marquez's wording)."""


class InvalidRequest(Exception):
    """400: the request is well-formed but asks for something that cannot be answered (the message says why)."""
