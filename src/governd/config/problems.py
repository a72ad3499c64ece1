"""What is wrong with a config: each problem with its dotted path and line, and the error that lists them."""

from __future__ import annotations

from dataclasses import dataclass

from governd.errors import GovernError


@dataclass(frozen=True)
class ConfigProblem:
    """One thing wrong with a config file."""

    path: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"line {self.line}: " if self.line else ""
        return f"{where}{self.path or '<root>'}: {self.message}"


class ConfigError(GovernError):
    """A config file that cannot be used; ``problems`` lists every error found."""

    code = "invalid_config"

    def __init__(self, source: str, problems: list[ConfigProblem]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: " + "; ".join(str(p) for p in problems))


class ReferenceProblems(ValueError):
    """Names in a config that point nowhere, each at its own path (relative to the model checked).

    Raised by a model's validator; the loader turns each into a ``ConfigProblem``
    at the path and line of the offending key.
    """

    def __init__(self, problems: list[tuple[tuple[str, ...], str]]) -> None:
        super().__init__("; ".join(f"{'.'.join(path)}: {what}" for path, what in problems))
        self.problems = problems
