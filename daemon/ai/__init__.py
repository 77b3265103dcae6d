"""The model layer as the daemon uses it: the runner (a task on the first usable model of its
chain), keys on this machine, where each model is (`targets`), prices, budgets and the reports
over the ledger. Imports config, store, llm, redaction and models; never the engine or notify.
"""
