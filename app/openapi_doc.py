"""The checked-in OpenAPI document (openapi/openapi.json): `python -m app.openapi_doc write|check`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from app.main import create_app

DOCUMENT = Path(__file__).resolve().parents[1] / "openapi" / "openapi.json"


def render() -> str:
    return json.dumps(create_app().openapi(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    command = argv[1] if len(argv) > 1 else "check"
    if command == "write":
        DOCUMENT.write_text(render(), encoding="utf-8")
        print(f"wrote {DOCUMENT}")
        return 0
    if DOCUMENT.exists() and DOCUMENT.read_text(encoding="utf-8") == render():
        print("openapi document is up to date")
        return 0
    print("openapi/openapi.json is stale: run `make openapi`", file=sys.stderr)
    return 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
