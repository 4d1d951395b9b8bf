"""Playwright (Python) driving the system's Chromium, headless: Debian's /usr/bin/chromium, never a browser
downloaded by `playwright install`. `.ci/run` installs the `chromium` package when it is missing."""

from __future__ import annotations

import os
from pathlib import Path

CHROMIUM = os.environ.get("HEADWATER_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = Path(__file__).parents[2] / "test-output" / "ui"


def launch(playwright):
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
