"""HTTP routers, one module per resource. Importing the package registers the ``name`` path convertor
(app/api/paths.py) that every router with names in its paths relies on."""

from app.api import paths as _paths  # noqa: F401
