"""Keeping secrets out of what we store and log.

Secrets reach the plugin only through environment variables. Any text we persist or log (error
messages, alert payloads) passes through :func:`redact`, which masks the values of environment
variables whose names mark them as secret.

    import os
    from planwise_monitoring.redaction import redact

    os.environ["PLANWISE_SMTP_PASSWORD"] = "hunter2-long"
    assert redact("login failed for hunter2-long") == "login failed for ***"
"""

from __future__ import annotations

import os
import re

_SECRET_NAME = re.compile(r"(SECRET|TOKEN|PASSWORD|PASSWD|API_KEY|APIKEY|WEBHOOK|CREDENTIAL|PRIVATE_KEY|DSN)", re.I)
_MIN_SECRET_LENGTH = 6  # shorter values would mask ordinary words


_registered: set[str] = set()  # values read through secret_env(), whatever their variable is called


def register_secret(value: str | None) -> None:
    """Mask ``value`` everywhere from now on (in this process)."""
    if value and len(value) >= _MIN_SECRET_LENGTH:
        _registered.add(value)


def secret_env(name: str) -> str | None:
    """Read a secret from the environment variable ``name`` and register it for masking.

    Every value a channel or the store reads from the environment goes through here: it is a
    secret whatever the variable is called."""
    value = os.environ.get(name)
    register_secret(value)
    return value


def secret_values() -> list[str]:
    values = {v for k, v in os.environ.items() if _SECRET_NAME.search(k) and len(v) >= _MIN_SECRET_LENGTH}
    return sorted(values | _registered, key=len, reverse=True)


def redact(text: str | None) -> str | None:
    if not text:
        return text
    for value in secret_values():
        text = text.replace(value, "***")
    return text
