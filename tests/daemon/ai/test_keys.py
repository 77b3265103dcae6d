from __future__ import annotations

from pathlib import Path

import pytest

from daemon.ai.keys import key_needed, keyring_status, missing_key_hint, resolve_key
from daemon.config.ai import ProviderConfig

CANARY = "sk-ant-canary-key-0b7e41"


@pytest.fixture(autouse=True)
def _null_keyring(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.null.Keyring")
    import keyring.core

    keyring.core._keyring_backend = None  # re-read the backend choice


def test_systemd_credential_is_named_provider_api_key(tmp_path: Path) -> None:
    (tmp_path / "anthropic_api_key").write_text(CANARY)
    env = {"CREDENTIALS_DIRECTORY": str(tmp_path), "ANTHROPIC_API_KEY": "from-env"}
    key, info = resolve_key("anthropic", {}, environ=env)
    assert key == CANARY
    assert info.source == "systemd-credential"
    assert info.where == "$CREDENTIALS_DIRECTORY/anthropic_api_key"
    assert CANARY not in repr(info)


def test_conventional_environment_variables(tmp_path: Path) -> None:
    key, info = resolve_key("google", {}, environ={"GOOGLE_API_KEY": CANARY})
    assert (key, info.source, info.where) == (CANARY, "env", "$GOOGLE_API_KEY")
    key, info = resolve_key("cohere", {}, environ={"CO_API_KEY": CANARY})
    assert (key, info.where) == (CANARY, "$CO_API_KEY")


def test_gemini_api_key_wins_over_google_api_key() -> None:
    key, _ = resolve_key("google", {}, environ={"GEMINI_API_KEY": "a", "GOOGLE_API_KEY": "b"})
    assert key == "a"


def test_keyring_entry_is_user_provider(monkeypatch: pytest.MonkeyPatch) -> None:
    import keyring

    seen: list[tuple[str, str]] = []

    def get_password(service: str, user: str) -> str | None:
        seen.append((service, user))
        return CANARY

    monkeypatch.setattr(keyring, "get_password", get_password)
    key, info = resolve_key("openai", {}, environ={"OPENAI_API_KEY": "env"})
    assert key == CANARY and info.source == "keyring"
    assert seen == [("watchkeeper", "openai")]


def test_missing_key_is_reported_with_what_to_do() -> None:
    key, info = resolve_key("anthropic", {}, environ={})
    assert key is None and info.source == "missing" and info.needed
    hint = missing_key_hint("anthropic")
    assert "watchkeeper keys set anthropic" in hint
    assert "LoadCredential=anthropic_api_key" in hint
    assert "ANTHROPIC_API_KEY" in hint


def test_ollama_and_local_declared_providers_need_no_key() -> None:
    providers = {
        "lmstudio": ProviderConfig(api="openai", base_url="http://127.0.0.1:1234/v1", local=True)
    }
    assert not key_needed("ollama", providers)
    assert not key_needed("lmstudio", providers)
    _, info = resolve_key("lmstudio", providers, environ={})
    assert info.source == "not needed"


def test_declared_provider_key_comes_from_its_secret_reference() -> None:
    providers = {
        "gateway": ProviderConfig(
            api="openai", base_url="https://gw.example/v1", key="secret:gateway_token"
        )
    }
    assert key_needed("gateway", providers)
    key, info = resolve_key("gateway", providers, environ={"gateway_token": CANARY})
    assert key == CANARY and info.source == "env"


def test_null_backend_is_not_a_usable_keyring() -> None:
    status = keyring_status()
    assert not status.usable
    assert status.backend.endswith("null.Keyring")


def test_resolved_key_is_masked_in_logs() -> None:
    from daemon.logging import redact

    resolve_key("cohere", {}, environ={"COHERE_API_KEY": "plainlookingvalue123"})
    assert "plainlookingvalue123" not in redact("calling cohere with plainlookingvalue123")
