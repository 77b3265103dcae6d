"""Nightly sweeps as the daemon runs them: the runner over `jobs.sweeps` rules, the diff against
the last run, the reports (Markdown, JSON, SARIF) and the model summary. Imports ai, notify,
store, config and jobs.sweeps; never the engine.
"""
