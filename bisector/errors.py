"""The one exception hierarchy: catch `BisectorError` to handle anything bisector raises.

Every subclass carries a message that is a single line naming the fix; the CLI prints it and
exits 2, the pytest plugin turns it into a one-line warning.
"""

from __future__ import annotations


class BisectorError(Exception):
    """Root of everything bisector raises on purpose. Catch this."""

    exit_code = 2

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(self.one_line())

    def one_line(self) -> str:
        text = self.message if not self.hint else f"{self.message}: {self.hint}"
        return " ".join(text.split())


class ConfigError(BisectorError):
    """A setting in pyproject.toml, the environment or on the command line is invalid."""


class GitError(BisectorError):
    """Not a repository, an unknown or unsafe revision, a shallow range, a failed git call."""

    def __init__(self, message: str, *, hint: str | None = None, stderr: str = "") -> None:
        self.stderr = stderr
        super().__init__(message, hint=hint)


class StoreError(BisectorError):
    """The history store cannot be opened, read or written (never deleted or overwritten)."""

    def __init__(self, message: str, *, hint: str | None = None, location: str = "") -> None:
        self.location = location
        super().__init__(message, hint=hint)


class ExecutorError(BisectorError):
    """A probe could not be run at all (as opposed to a test that failed)."""


class BisectError(BisectorError):
    """A bisection was asked for that cannot be carried out (nothing to find, bad range)."""
