"""The one error type for configuration mistakes, and how it reads to a person."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Problem:
    """One mistake: where it is (file and dotted key), what is wrong, and how to fix it.

    `fix` is required: README promises file, key and fix for every configuration error.
    """

    source: str
    key: str
    message: str
    fix: str

    def render(self) -> str:
        text = f"{self.source}: {self.key}: {self.message}" if self.key else f"{self.source}: {self.message}"
        if self.fix:
            text += f"\n    fix: {self.fix}"
        return text


@dataclass
class ConfigError(Exception):
    """Raised before any resource is declared when configuration is wrong.

    Carries every problem found, so one run shows them all instead of one per attempt.
    """

    problems: list[Problem] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__(self.render())

    def render(self) -> str:
        lines = [p.render() for p in self.problems]
        count = len(self.problems)
        head = f"configuration error ({count} problem{'s' if count != 1 else ''}):"
        return "\n".join([head, *("  " + line for line in lines)])

    def __str__(self) -> str:
        return self.render()


class SettingError(ValueError):
    """A settings validator's refusal: what is wrong and the fix, optionally below the validated key.

    Validators raise it instead of a bare ValueError; the loader turns it into a Problem. `key` is relative
    to what the validator checks (a field name for a model validator, a sub-key such as a tag's name for a
    field validator), so the Problem names the exact key.
    """

    def __init__(self, message: str, fix: str, *, key: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.fix = fix
        self.key = key


def fail(source: str, key: str, message: str, fix: str) -> ConfigError:
    """Build a ConfigError holding a single problem (callers `raise fail(...)`)."""
    return ConfigError([Problem(source, key, message, fix)])
