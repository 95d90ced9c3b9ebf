"""How to run ``kgate`` as a printed command that works when pasted into a shell.

``provisioning/workstation.sh demo`` runs ``.venv/bin/kgate``, which is not on ``PATH``: a printed
``kgate register serve …`` would fail with "command not found". :func:`kgate_command` gives ``kgate``
only when that very script is what ``PATH`` finds, the absolute path of the running ``kgate`` script
otherwise, and ``PYTHON -m kgate`` when kgate was not started through its script at all.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys


def kgate_command() -> str:
    """The shell words that run this kgate (quoted for a POSIX shell)."""
    script = sys.argv[0] if sys.argv else ""
    if os.path.basename(script) == "kgate" and os.path.isfile(script):
        path = os.path.abspath(script)
        found = shutil.which("kgate")
        if found is not None and os.path.abspath(found) == path:
            return "kgate"
        return shlex.quote(path)
    return f"{shlex.quote(sys.executable)} -m kgate"
