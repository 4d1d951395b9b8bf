"""The web UI: a single-page app built from ui/ (`make ui`) into app/ui/static, served by the API's process.

The page's own routes (deep links such as /jobs/<ns>/<name>) all answer index.html so a reload lands on the
page the browser history API showed; the app reads the path itself. Only those prefixes are claimed, so the
API, the operator endpoints and /docs are never shadowed, and an unknown path still gets a JSON 404.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).parent / "static"
INDEX = STATIC_DIR / "index.html"

# Top-level paths of the single-page app; each serves index.html for itself and everything below it.
PAGES = ("namespaces", "jobs", "datasets", "runs", "lineage", "backfills")

router = APIRouter(include_in_schema=False)


def _index() -> FileResponse:
    # Never cached: it names the current hashed assets, which may change with every build.
    return FileResponse(INDEX, headers={"Cache-Control": "no-cache"})


@router.get("/")
def home() -> FileResponse:
    return _index()


for _page in PAGES:
    router.add_api_route(f"/{_page}", _index, methods=["GET"])
    router.add_api_route(f"/{_page}/{{rest:path}}", _index, methods=["GET"])


def install(app: FastAPI) -> None:
    """Serve the built UI when it is there (a source checkout before `make ui` serves the API only)."""
    if not INDEX.is_file():
        return
    app.mount("/assets", StaticFiles(directory=STATIC_DIR / "assets"), name="ui-assets")
    app.include_router(router)
