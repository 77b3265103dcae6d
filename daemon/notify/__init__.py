"""What people and systems hear: routing to targets, the typed payload, rendering, the channels
(apprise, the signed webhook), delivery of the claimed outbox, and the daily digest. Imports ai
(cost reports), store, config and models; never the engine.
"""
