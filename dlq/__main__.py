import sys

from dlq.cli import main

sys.exit(main())
