"""``python -m dynalease ...``: the ``dynalease`` command line (see ``dynalease._cli``)."""

import sys

from ._cli import main

if __name__ == "__main__":
    # As pip does: usage lines then read "python -m dynalease ...", which is what to type.
    sys.exit(main(["python -m dynalease", *sys.argv[1:]]))
