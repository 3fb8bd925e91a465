"""Entry point: ``python run_server.py COMMAND …`` (the same CLI as ``raid-server``)."""

import sys

from server.cli import main

if __name__ == "__main__":
    sys.exit(main())
