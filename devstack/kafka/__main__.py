"""`python -m devstack.kafka fetch|up|down|status` (make kafka-jars, kafka-up, kafka-down)."""

import sys

from devstack.kafka.cli import main

sys.exit(main())
