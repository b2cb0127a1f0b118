"""``python -m vpbench`` is the ``vpbench`` command."""

from .cli import main

main()
