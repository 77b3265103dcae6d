"""Owns the Kubernetes sweep rules, their one collector (collect, workloads) and CONTEXT frame.
May import daemon.models, jobs.kubernetes, jobs.sweeps.base and jobs.sweeps.rule; kubernetes lazily.
"""
