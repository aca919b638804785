"""`python -m devstack.gate` (make k8s-check)."""

import sys

from devstack.gate.run import main

sys.exit(main())
