"""Owns the aws_* check types and `api`, the one AWS client code that jobs.sweeps.aws shares.
May import daemon.models, daemon.util, jobs.base and jobs._net_errors; boto3 only in functions.
"""
