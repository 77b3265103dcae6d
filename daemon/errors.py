"""Error types per layer. Messages say what is wrong and what to do; they never carry secrets."""

from __future__ import annotations

from dataclasses import dataclass

from daemon.util.text import printable


class WatchkeeperError(Exception):
    """Base of every error watchkeeper raises on purpose."""


@dataclass(frozen=True)
class ConfigProblem:
    key: str
    """Dotted path of the offending key, e.g. `checks[api].interval`; empty for the file."""
    message: str
    source: str | None = None
    """Where the value came from when it is not the error's file: `environment` (then `key`
    is the variable's name)."""

    def render(self, source: str) -> str:
        """One line, whatever the names in it hold: a key, value or file name from the config
        may carry line breaks or control characters; they are shown as escapes."""
        source = self.source or source
        text = f"{source}: {self.key}: {self.message}" if self.key else f"{source}: {self.message}"
        return printable(text).replace("\n", "\\n")


class ConfigError(WatchkeeperError):
    """The configuration cannot be used. Rendered one problem per line; exit code 2."""

    def __init__(self, source: str, problems: list[ConfigProblem]) -> None:
        self.source = source
        self.problems = problems
        super().__init__("\n".join(p.render(source) for p in problems))


class SecretError(WatchkeeperError):
    """A `secret:NAME` reference could not be resolved. The message names NAME, never a value."""


class StateError(WatchkeeperError):
    """The state directory or database cannot be used (locked, unwritable, newer schema)."""
