from __future__ import annotations

from pathlib import Path

import pytest

from daemon import secrets
from daemon.errors import SecretError

CANARY = "wk-canary-secret-7d1e"


@pytest.fixture(autouse=True)
def _no_keyring(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.null.Keyring")


def test_plain_values_pass_through() -> None:
    assert (
        secrets.resolve("https://example.invalid/hook", environ={})
        == "https://example.invalid/hook"
    )


def test_systemd_credential_wins_over_environment(tmp_path: Path) -> None:
    (tmp_path / "slack_hook").write_text(CANARY + "\n")
    env = {"CREDENTIALS_DIRECTORY": str(tmp_path), "slack_hook": "from-env"}
    assert secrets.resolve("secret:slack_hook", environ=env) == CANARY
    assert secrets.lookup("slack_hook", environ=env) == (CANARY, "systemd-credential")


def test_environment_is_the_last_resort(tmp_path: Path) -> None:
    env = {"CREDENTIALS_DIRECTORY": str(tmp_path), "SLACK_HOOK": CANARY}
    assert secrets.lookup("slack_hook", environ=env) == (CANARY, "env")


def test_keyring_is_consulted_before_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    import keyring

    monkeypatch.setattr(
        keyring, "get_password", lambda service, name: CANARY if service == "watchkeeper" else None
    )
    assert secrets.lookup("slack_hook", environ={"slack_hook": "env"}) == (CANARY, "keyring")


def test_a_broken_keyring_backend_is_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    import keyring
    from keyring.errors import NoKeyringError

    def fail(service: str, name: str) -> str:
        raise NoKeyringError("no backend")

    monkeypatch.setattr(keyring, "get_password", fail)
    assert secrets.lookup("x", environ={"x": CANARY}) == (CANARY, "env")


def test_missing_secret_names_it_and_says_where_to_put_it() -> None:
    with pytest.raises(SecretError) as info:
        secrets.resolve("secret:ops_hook", environ={})
    message = str(info.value)
    assert "'ops_hook' not found" in message
    assert "LoadCredential=ops_hook" in message
    assert "environment variable ops_hook" in message


def test_empty_secret_reference_is_an_error() -> None:
    with pytest.raises(SecretError, match="empty secret reference"):
        secrets.resolve("secret:", environ={})
