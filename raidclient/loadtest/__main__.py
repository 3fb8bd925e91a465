"""``python -m raidclient.loadtest``: the same as the ``raid-loadtest`` command."""

import sys

from raidclient.loadtest.cli import main

if __name__ == "__main__":
    sys.exit(main())
