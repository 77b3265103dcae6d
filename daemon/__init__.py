"""watchkeeper's engine: config, scheduler, pipeline, state, notifications."""

__version__ = "0.1.0"
USER_AGENT = "watchkeeper/0.1"
"""Sent with every HTTP request watchkeeper makes: checks, providers, webhooks."""
