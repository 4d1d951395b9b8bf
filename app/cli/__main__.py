"""``python -m app.cli``: the ``headwater`` command without the installed script."""

from app.cli import main

main()
