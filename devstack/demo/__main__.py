"""`python -m devstack.demo up|down` (make demo, make demo-down)."""

import sys

from devstack.demo.run import main

sys.exit(main())
