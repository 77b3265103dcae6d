"""Loopback imitations of the model providers' APIs, speaking their real request and response
JSON (usage fields, error bodies, quirks included), one module per provider."""

from daemon.llm import PROVIDERS, provider_info


def key_variables() -> tuple[str, ...]:
    """Every environment variable a built-in provider takes its key from, as the providers
    declare them (`daemon.llm.PROVIDERS`, `ProviderInfo.key_env`): a new provider's are
    included without anyone copying a list."""
    return tuple(variable for api in PROVIDERS for variable in provider_info(api).key_env)
