"""`python -m devstack.k8s_e2e` (make k8s-e2e)."""

import sys

from devstack.k8s_e2e.run import main

sys.exit(main())
