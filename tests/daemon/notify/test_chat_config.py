"""Configuring the Slack and Teams kinds: what loads, what is refused and how it is said (key,
what is wrong, what to do — never a URL or a token), an apprise slack:// URL missing its
tokens, and every notify option described for `config schema`."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from daemon.config.load import load_settings
from daemon.config.settings import NotifyTarget
from daemon.errors import ConfigError

BASE = '[daemon]\nstate_dir = "state"\n'
TOKEN_CANARY = "xoxb-1111-2222-tokencanary9b8a"
HOOK_CANARY = "hookcanary4c7d"


def load(tmp_path: Path, notify: str) -> list[NotifyTarget]:
    path = tmp_path / "config.toml"
    path.write_text(BASE + "\n[[notify]]\n" + textwrap.dedent(notify), encoding="utf-8")
    return load_settings(path).notify


def problems(tmp_path: Path, notify: str) -> str:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, notify)
    return str(info.value)


def test_a_slack_webhook_a_slack_bot_and_a_teams_workflow_load(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(
        BASE
        + textwrap.dedent(f"""
        [[notify]]
        name = "slack-hook"
        kind = "slack"
        url = "https://hooks.slack.com/services/T0/B0/{HOOK_CANARY}"

        [[notify]]
        name = "slack-bot"
        kind = "slack"
        token = "secret:slack_bot_token"
        channel = "#ops"

        [[notify]]
        name = "teams"
        kind = "teams"
        url = "secret:teams_workflow_url"
        min_severity = "high"
        """),
        encoding="utf-8",
    )
    hook, bot, teams = load_settings(path).notify
    assert (hook.kind, hook.token, hook.channel) == ("slack", None, None)
    assert (bot.url, bot.token, bot.channel, bot.api_url) == (
        None,
        "secret:slack_bot_token",
        "#ops",
        None,
    )
    assert (teams.kind, teams.url) == ("teams", "secret:teams_workflow_url")


@pytest.mark.parametrize(
    ("notify", "key", "reason"),
    [
        (
            'kind = "slack"\n',
            "url",
            "a slack target needs url (an incoming webhook) or token (a bot token)",
        ),
        (
            'kind = "slack"\nurl = "https://hooks.slack.com/services/T/B/C"\n'
            'token = "secret:bot"\nchannel = "#ops"\n',
            "token",
            "set url (an incoming webhook) or token, not both",
        ),
        (
            'kind = "slack"\ntoken = "secret:bot"\n',
            "channel",
            'a bot token needs a channel to post to, e.g. "#ops"',
        ),
        (
            'kind = "slack"\nurl = "https://hooks.slack.com/services/T/B/C"\nchannel = "#ops"\n',
            "channel",
            "an incoming webhook posts where it was created; remove this key",
        ),
        (
            'kind = "slack"\ntoken = "secret:bot"\nchannel = "ops team!"\n',
            "channel",
            "write #name or a channel ID such as C0123ABC",
        ),
        (
            'kind = "slack"\ntoken = "secret:bot"\nchannel = "#ops"\napi_url = "http://x.example"\n',
            "api_url",
            "api_url must start with https://",
        ),
        (
            'kind = "slack"\nurl = "http://hooks.slack.com/services/T/B/C"\n',
            "url",
            "a Slack webhook URL must start with https://",
        ),
        ('kind = "teams"\n', "url", "a teams target needs a url"),
        (
            'kind = "teams"\nurl = "http://prod-1.westus.logic.azure.com/workflows/x"\n',
            "url",
            "a Teams Workflows URL must start with https://",
        ),
        (
            'kind = "teams"\nurl = "https://x.example"\nchannel = "#ops"\n',
            "channel",
            'only slack targets take this key; set kind = "slack" or remove it',
        ),
        ('url = "json://127.0.0.1/x"\ntoken = "secret:t"\n', "token", "only slack targets"),
        ('kind = "webhook"\n', "url", "a webhook target needs a url"),
    ],
)
def test_what_each_kind_needs_is_said_per_key(
    tmp_path: Path, notify: str, key: str, reason: str
) -> None:
    text = problems(tmp_path, 'name = "n"\n' + notify)
    assert f": notify[n].{key}: {reason}" in text


def test_a_bot_token_must_be_a_secret_reference_and_is_never_echoed(tmp_path: Path) -> None:
    text = problems(
        tmp_path, f'name = "n"\nkind = "slack"\ntoken = "{TOKEN_CANARY}"\nchannel = "#ops"\n'
    )
    assert ": notify[n].token: must be secret:NAME, never the key itself" in text
    assert TOKEN_CANARY not in text


@pytest.mark.parametrize("url", ["slack://", "slack://TokenA", "slack://TokenA/TokenB"])
def test_a_slack_url_without_its_tokens_says_what_is_missing(tmp_path: Path, url: str) -> None:
    text = problems(tmp_path, f'name = "ops"\nurl = "{url}"\n')
    assert text.endswith(
        ": notify[ops].url: slack:// needs three tokens: slack://TokenA/TokenB/TokenC — or use "
        'kind = "slack" with a webhook URL'
    ), text


def test_a_teams_connector_url_points_to_workflows(tmp_path: Path) -> None:
    text = problems(tmp_path, 'name = "ops"\nurl = "msteams://"\n')
    assert "notify[ops].url: msteams:// needs the tokens of an Office 365 connector URL" in text
    assert 'use kind = "teams" with a Workflows webhook URL' in text


def test_every_notify_option_is_described_for_config_schema() -> None:
    schema = NotifyTarget.model_json_schema()
    undescribed = [k for k, v in schema["properties"].items() if not v.get("description")]
    assert undescribed == []
    assert schema["properties"]["kind"]["enum"] == ["apprise", "webhook", "slack", "teams"]
