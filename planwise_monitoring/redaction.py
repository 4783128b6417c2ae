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


def secret_values() -> list[str]:
    values = {v for k, v in os.environ.items() if _SECRET_NAME.search(k) and len(v) >= _MIN_SECRET_LENGTH}
    return sorted(values, key=len, reverse=True)


def redact(text: str | None) -> str | None:
    if not text:
        return text
    for value in secret_values():
        text = text.replace(value, "***")
    return text
