"""`watchkeeper run`: the long-running daemon (scheduler, signals, sd_notify, the health
listener) and its `--once` variant. Imports the runtime and what it schedules; never the CLI.
"""
