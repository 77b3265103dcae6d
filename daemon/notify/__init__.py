"""What people and systems hear: routing to targets, the typed payload, rendering, the channels
(apprise, the signed webhook, Slack Block Kit, Teams Adaptive Cards), delivery of the claimed
outbox, and the daily digest. Imports ai (cost reports), llm (Retry-After parsing), store,
config and models; never the engine.
"""
