"""``python -m prospect sweep NAME ...``: a repro experiment's cells on a Ray cluster."""

import sys

from ._ray import main

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] != "sweep":
        print("usage: python -m prospect sweep NAME [--full] [--address auto] ...", file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[2:]))
