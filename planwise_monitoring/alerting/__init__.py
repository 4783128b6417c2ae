"""Alerts: the routing/dedup/throttle policy (pure), the channels that deliver, and the dispatcher.

Deciding what to say is separate from how it is sent.
"""
