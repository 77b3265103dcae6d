"""Nightly sweeps as the daemon runs them: the runner over `jobs.sweeps` rules (after one check
per scope, `scopes`), the diff against the last run, the reports (Markdown and JSON in
`reports`, SARIF in `sarif`, the files in `files`) and the model summary. Imports ai, notify,
store, config and jobs.sweeps; never the engine.
"""
