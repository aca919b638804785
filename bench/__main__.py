"""`python -m bench` (what `make bench` runs); BENCH_QUICK=1 for a short development run."""

import sys

from bench.run import main

sys.exit(main())
