"""The ``dynalease`` command line: the wheel's console script and ``python -m dynalease``.

The program is the Rust one (crate ``dynalease-cli``), run in this process by the native module:
the same commands, output and exit codes as the ``dynalease`` binary and ``npx dynalease``.
``dynalease --help`` lists the commands, examples and exit codes.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from typing import Optional, Sequence

from . import _native


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Runs the command line with ``argv`` (default ``sys.argv``; the program name first) and
    returns its exit code, for ``sys.exit``.

    It prints what the Rust binary prints (the library's log records are not shown), and Ctrl-C
    acts as on the Rust binary: SIGINT gets its default action back (Python's handler
    would only raise KeyboardInterrupt once the command had ended), so it stops a command at
    once, and ``locks watch``, which handles it, ends cleanly.
    """
    args = list(sys.argv if argv is None else argv)
    # The library's log records (retries, say) would reach stderr through logging's last-resort
    # handler; the Rust binary prints none, and the command's own message says what failed.
    logging.getLogger("dynalease").addHandler(logging.NullHandler())
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_DFL)
    # What Python buffered goes out before the command writes to the same descriptors.
    sys.stdout.flush()
    sys.stderr.flush()
    return _native.cli_main(args)
