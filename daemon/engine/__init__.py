"""From check results to incidents and what people hear about them: baselines, the incident
engine (pure), triage, root-cause analysis and the pipeline that commits each cycle. Imports
ai, notify, store, config and jobs; never the service or the CLI.
"""
