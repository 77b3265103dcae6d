"""Owns the `kubernetes` check and `api`, the one Kubernetes client code jobs.sweeps.k8s shares.
May import daemon.models, daemon.util and jobs.base; the kubernetes client only in functions.
"""
