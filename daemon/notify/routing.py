"""Which targets hear about what: one outbox item per (event, target) the target asked for,
by event kind, severity and tags. Pure: no I/O.

Every target kind gets the structured payload too, since a reload may turn an apprise target
into a webhook while the row waits.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from daemon.config.settings import NotifyTarget
from daemon.models import IncidentEvent, Message
from daemon.notify.payload import Sections, event_payload, message_payload
from daemon.notify.render import render_event
from daemon.store.outbox import OutboxItem


def route(
    events: list[IncidentEvent],
    targets: list[NotifyTarget],
    tags_by_check: Mapping[str, list[str]],
    *,
    messages: Sequence[Message] | None = None,
    sections: Sequence[Sections] | None = None,
) -> list[OutboxItem]:
    """One item per (event, target) the target asked for — none for a held event: its
    `events` include the kind, the
    event's severity reaches `min_severity`, and its `tags` (if any) meet the check's tags.
    `messages[i]`, when given, is event i's composed message (triage, RCA and cost lines added
    to the rules' own, else the rules' own); `sections[i]` what a model added to its payload."""
    items: list[OutboxItem] = []
    for index, event in enumerate(events):
        if event.held is not None:
            continue  # a silence or maintenance window holds it: recorded, not sent
        check_tags = set(tags_by_check.get(event.check, []))
        wanted = [
            target
            for target in targets
            if event.kind in target.events
            and event.severity >= target.min_severity
            and (not target.tags or check_tags.intersection(target.tags))
        ]
        if not wanted:
            continue
        message = messages[index] if messages is not None else render_event(event)
        extra = sections[index] if sections is not None else None
        payload = event_payload(event, message, extra)
        items += [_item(target.name, message, payload, index) for target in wanted]
    return items


def route_message(message: Message, targets: list[NotifyTarget], kind: str) -> list[OutboxItem]:
    """Items for a message outside a cycle (e.g. kind "report") to every target wanting it."""
    payload = message_payload(message, kind)
    return [_item(t.name, message, payload, None) for t in targets if kind in t.events]


def _item(
    target: str, message: Message, payload: dict[str, Any], event_index: int | None
) -> OutboxItem:
    # every target kind gets the payload: a reload may turn an apprise target into a webhook
    return OutboxItem(
        target, message.title, message.body, message.notify_type, event_index, payload
    )
