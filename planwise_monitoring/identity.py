"""Who is acting when no one is named: the user a change, a baseline or an optimization run is
recorded as by default.

    from planwise_monitoring.identity import os_user

    assert os_user()   # the login name, else "uid-<n>"
"""

from __future__ import annotations

import getpass
import os


def os_user() -> str:
    """The login name, else the uid (a container without a login name)."""
    try:
        return getpass.getuser()
    except Exception:  # getpass raises OSError or KeyError, depending on the platform
        return f"uid-{os.getuid()}"
