"""`python -m devstack.k8s_scale` (make k8s-scale)."""

import sys

from devstack.k8s_scale.run import main

sys.exit(main())
