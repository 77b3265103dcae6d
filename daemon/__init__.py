"""watchkeeper's engine: config, scheduler, pipeline, state, notifications."""

__version__ = "0.1.0"
