"""`python -m collector`: settings from the environment, then serve."""

import sys

from collector.server import main

if __name__ == "__main__":
    sys.exit(main())
