"""Provider keys on this machine: where each comes from, and `watchkeeper keys set/delete`.

Resolution order: systemd credential `<provider>_api_key`, then the OS keyring (service
`watchkeeper`, user `<provider>`), then the provider's conventional environment variable.
Values are returned to callers only; this module never prints, logs or stores them elsewhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from daemon import secrets
from daemon.config.ai import ProviderConfig
from daemon.llm import PROVIDERS, key_env
from daemon.llm import base as llm_base
from daemon.logging import add_known_secret

KeySource = str  # "systemd-credential" | "keyring" | "env" | "missing" | "not needed"


@dataclass(frozen=True)
class KeyInfo:
    provider: str
    source: KeySource
    needed: bool
    where: str
    """Which credential file, keyring entry or variable it came from (never the value)."""


def credential_name(provider: str) -> str:
    return f"{provider}_api_key"


def env_names(provider: str) -> tuple[str, ...]:
    return key_env(provider) or (f"{provider.upper().replace('-', '_')}_API_KEY",)


def missing_key_hint(provider: str) -> str:
    return llm_base.missing_key_hint(provider, env_names(provider))


def key_needed(provider: str, providers: Mapping[str, ProviderConfig]) -> bool:
    """A built-in provider needs a key when it declares key variables (Ollama declares none);
    a declared provider needs one only when its config points at one with
    `key = "secret:NAME"` (LM Studio needs none)."""
    config = providers.get(provider)
    if config is not None and config.key is not None:
        return True
    return provider in PROVIDERS and bool(key_env(provider))


def resolve_key(
    provider: str,
    providers: Mapping[str, ProviderConfig],
    environ: Mapping[str, str] | None = None,
) -> tuple[str | None, KeyInfo]:
    """The key and where it came from. Registers the value with log redaction."""
    config = providers.get(provider)
    needed = key_needed(provider, providers)
    if config is not None and config.key is not None:
        name = config.key.removeprefix(secrets.SECRET_PREFIX)
        value, source = secrets.lookup(name, environ=environ)
        where = _where(source, name, name, (name, name.upper()))
    else:
        names = env_names(provider)
        value, source = secrets.lookup(
            provider,
            credential_name=credential_name(provider),
            keyring_name=provider,
            env_names=names,
            environ=environ,
        )
        where = _where(source, credential_name(provider), provider, names, environ)
    if value is not None:
        add_known_secret(value)
    if value is None and not needed:
        return None, KeyInfo(provider, "not needed", False, "")
    return value, KeyInfo(provider, source, needed, where)


def _where(
    source: str,
    credential: str,
    keyring_user: str,
    env_vars: tuple[str, ...],
    environ: Mapping[str, str] | None = None,
) -> str:
    import os

    env = os.environ if environ is None else environ
    if source == "systemd-credential":
        return f"$CREDENTIALS_DIRECTORY/{credential}"
    if source == "keyring":
        return f"keyring service watchkeeper, user {keyring_user}"
    if source == "env":
        return next((f"${v}" for v in env_vars if env.get(v)), "environment")
    return ""


# -- the OS keyring ---------------------------------------------------------------------------


@dataclass(frozen=True)
class KeyringStatus:
    usable: bool
    backend: str


def keyring_status() -> KeyringStatus:
    """Headless Linux usually has no usable backend (fail/null keyring, or an empty chain)."""
    import keyring
    from keyring.backends import chainer, fail, null

    backend = keyring.get_keyring()
    name = f"{type(backend).__module__}.{type(backend).__name__}"
    if isinstance(backend, fail.Keyring | null.Keyring):
        return KeyringStatus(False, name)
    if isinstance(backend, chainer.ChainerBackend) and not backend.backends:
        return KeyringStatus(False, name)
    return KeyringStatus(True, name)


def no_keyring_message(provider: str, backend: str) -> str:
    names = " or ".join(env_names(provider))
    return (
        f"no usable OS keyring on this machine (backend {backend}); keys are never written "
        "in plain text unasked. Instead: under systemd, `systemd-creds encrypt` the key and "
        f"add `LoadCredentialEncrypted={credential_name(provider)}:/etc/watchkeeper/"
        f"{credential_name(provider)}.cred` (or `LoadCredential=` with a 0600 file); "
        f"otherwise set {names} in the service's environment"
    )


def store_key(provider: str, value: str) -> None:
    import keyring

    keyring.set_password(secrets.KEYRING_SERVICE, provider, value)


def delete_key(provider: str) -> bool:
    """True when a keyring entry was removed."""
    import keyring
    from keyring.errors import PasswordDeleteError

    try:
        keyring.delete_password(secrets.KEYRING_SERVICE, provider)
    except PasswordDeleteError:
        return False
    return True
