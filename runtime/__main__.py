"""``python -m runtime scheduler ...`` / ``python -m runtime worker ...``: the two commands of :mod:`runtime.cli`."""
import sys

from .cli import main

sys.exit(main())
