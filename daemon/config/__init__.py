"""The configuration: the models of the TOML file (`settings`, `ai`, `sweeps`, `checks`), the
rules that span entries (`cross`), problem rendering (`problems`) and loading (`load`).

Imports `daemon.models`, `daemon.llm`'s registry and `jobs`' registries; never the store, the
network or a secret value. Check types load only when a config uses them.
"""
