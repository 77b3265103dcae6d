"""watchkeeper's engine: config, scheduler, pipeline, state, notifications."""

__version__ = "0.1.0"
__watchkeeper__ = True
"""The console script (`_watchkeeper`) checks this before importing anything else: another
package named `daemon` (python-daemon) in the same environment has no such attribute."""
USER_AGENT = "watchkeeper/0.1"
"""Sent with every HTTP request watchkeeper makes: checks, providers, webhooks."""
