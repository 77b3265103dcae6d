"""Owns the AWS sweep rules, their one collector (collect, collect_account), frames and prices.
May import daemon.models, jobs.aws.api, jobs.sweeps.base and jobs.sweeps.rule; never boto3.
"""
