"""`python -m devstack.demo up|down` (make demo, make demo-down)."""

import sys

from devstack.demo.stack import main

sys.exit(main())
