"""``python -m sipsimple.bench WORKLOAD [--json] [--duration S] [--profile FILE]``."""

import sys

from sipsimple.bench.runner import main

sys.exit(main())
