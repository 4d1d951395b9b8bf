"""Errors the services raise; the API turns them into Marquez-shaped responses."""


class NotFound(Exception):
    """404: e.g. "Namespace 'x' not found." (Marquez's wording)."""


class InvalidRequest(Exception):
    """400: the request is well-formed but asks for something that cannot be answered (the message says why)."""


class JobMoved(Exception):
    """301: the job was asked for by an alias (Marquez's ``parent.child`` name of a job we keep as sent, or a
    symlinked job); the API redirects to the canonical name."""

    def __init__(self, namespace: str, name: str):
        super().__init__(f"Job moved to '{name}'.")
        self.namespace = namespace
        self.name = name
