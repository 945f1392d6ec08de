"""`python -m bench` is the same as the `bench` console script."""

import sys

from bench.cli import main

if __name__ == "__main__":  # guarded: DataLoader workers started with spawn re-import this module
    sys.exit(main())
