"""`python -m validator`: settings from the environment, then run."""

import sys

from validator.cli import main

if __name__ == "__main__":
    sys.exit(main())
