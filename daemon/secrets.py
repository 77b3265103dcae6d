"""Resolve `secret:NAME` references on this machine: systemd credential, OS keyring, environment.

Values are returned to the caller only; this module never logs, stores or formats them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from daemon.errors import SecretError

SECRET_PREFIX = "secret:"  # noqa: S105 - the reference syntax, not a secret
KEYRING_SERVICE = "watchkeeper"

Source = Literal["systemd-credential", "keyring", "env", "missing"]


def is_secret_ref(value: str) -> bool:
    return value.startswith(SECRET_PREFIX)


def _credential(name: str, environ: Mapping[str, str]) -> str | None:
    directory = environ.get("CREDENTIALS_DIRECTORY")
    if not directory:
        return None
    path = Path(directory) / name
    try:
        return path.read_text(encoding="utf-8").strip() or None
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        return None


def _keyring(name: str) -> str | None:
    """The OS keyring, when a usable backend exists; headless Linux usually has none."""
    try:
        import keyring
        from keyring.errors import KeyringError
    except ImportError:  # pragma: no cover - keyring is a dependency
        return None
    try:
        value: str | None = keyring.get_password(KEYRING_SERVICE, name)
    except (KeyringError, RuntimeError):
        return None
    return value or None


def lookup(
    name: str,
    *,
    credential_name: str | None = None,
    keyring_name: str | None = None,
    env_names: tuple[str, ...] = (),
    environ: Mapping[str, str] | None = None,
    use_keyring: bool = True,
) -> tuple[str | None, Source]:
    """First hit of: `$CREDENTIALS_DIRECTORY/NAME`, keyring (`watchkeeper`, NAME), env vars.
    Provider keys use other names per place (`anthropic_api_key`, `anthropic`,
    `ANTHROPIC_API_KEY`)."""
    env = os.environ if environ is None else environ
    value = _credential(credential_name or name, env)
    if value is not None:
        return value, "systemd-credential"
    if use_keyring:
        value = _keyring(keyring_name or name)
        if value is not None:
            return value, "keyring"
    for var in env_names or (name, name.upper()):
        if env.get(var):
            return env[var], "env"
    return None, "missing"


def resolve(value: str, *, environ: Mapping[str, str] | None = None) -> str:
    """Return `value` unchanged unless it is `secret:NAME`; then the secret, or SecretError."""
    if not is_secret_ref(value):
        return value
    name = value.removeprefix(SECRET_PREFIX).strip()
    if not name:
        raise SecretError("empty secret reference: write secret:NAME")
    secret, _ = lookup(name, environ=environ)
    if secret is None:
        raise SecretError(
            f"secret {name!r} not found: add it with `LoadCredential={name}:/path` in the unit, "
            f"or `keyring set {KEYRING_SERVICE} {name}`, or set the environment variable {name}"
        )
    return secret
