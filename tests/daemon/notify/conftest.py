"""The chat peers (Slack, Teams) for the notify tests."""

from tests.peers.chat import chat_peers  # noqa: F401
