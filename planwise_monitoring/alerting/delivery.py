"""Where the alert delivery names lived until the split into channels and dispatcher; kept so
``from planwise_monitoring.alerting.delivery import AlertDispatcher`` (and the 0.1 path
``planwise_monitoring.alert_delivery``) keep working::

    from planwise_monitoring.alerting.delivery import AlertDispatcher
    from planwise_monitoring.alerting.dispatcher import AlertDispatcher as Dispatcher
    assert AlertDispatcher is Dispatcher

New code imports from :mod:`.dispatcher`, :mod:`.channels` and :mod:`.apprise_channel`.
"""

from .apprise_channel import AppriseChannel
from .channels import (
    DEFAULT_TIMEOUT_SECONDS,
    Channel,
    DeliveryError,
    EmailChannel,
    FileChannel,
    LogChannel,
    Logger,
    SlackChannel,
    WebhookChannel,
    redact_alert,
    scrub,
)
from .dispatcher import (
    ATTEMPTS_PER_TICK,
    CHANNEL_BUDGET_SECONDS,
    FAILED,
    IN_FLIGHT_GRACE_SECONDS,
    PENDING,
    PENDING_BATCH,
    SENT,
    SUPPRESSED,
    AlertDispatcher,
    DispatchReport,
    build_channel,
)

__all__ = [
    "ATTEMPTS_PER_TICK", "CHANNEL_BUDGET_SECONDS", "DEFAULT_TIMEOUT_SECONDS", "FAILED", "IN_FLIGHT_GRACE_SECONDS",
    "PENDING", "PENDING_BATCH", "SENT", "SUPPRESSED", "AlertDispatcher", "AppriseChannel", "Channel",
    "DeliveryError", "DispatchReport", "EmailChannel", "FileChannel", "LogChannel", "Logger", "SlackChannel",
    "WebhookChannel", "build_channel", "redact_alert", "scrub",
]
