"""`python -m kit` and the `kit` script: the command line, then a quick exit.

The interpreter's teardown (freeing psycopg and every module imported) took 20-30 ms of each command's
wall time. Nothing is left for it to do: files are closed and child processes waited for before main
returns, and the two streams are flushed here; so the process leaves with os._exit.
"""

import os
import sys

from kit.cli import main


def run() -> None:
    code = main()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BrokenPipeError:  # `kit status | head`: the reader left
        pass
    os._exit(code)


if __name__ == "__main__":
    run()
