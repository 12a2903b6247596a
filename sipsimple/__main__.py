"""``python -m sipsimple``: the same as the ``sipsimple`` command."""

import sys

from sipsimple.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
