"""Allow ``python -m governd``."""

from governd.cli import main

main()
