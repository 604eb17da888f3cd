"""The errors of swin-lit: one base class, and the bad-input family the CLI turns into exit code 2.

Library code raises these and never imports the CLI; ``swin_lit.cli`` maps every ``BadInput`` to one
line on stderr and exit code 2, before any work is lost.

    SwinLitError
    └── BadInput            input rejected before any work (exit 2)
        ├── ConfigError     a config / spec key, value or combination (the message starts with the key)
        ├── DataError       missing, empty or unreadable data (the message names the folder or file)
        └── StorageError    a study storage that cannot be opened or read (URL, journal file, driver)

``ConfigError`` and ``DataError`` are also ``ValueError``s (older callers catch those); they are re-exported
where they always lived: ``swin_lit.typed.ConfigError``, ``swin_lit.data.DataError``.
"""

from __future__ import annotations


class SwinLitError(Exception):
    """Base class of every error swin-lit raises on purpose."""


class BadInput(SwinLitError):
    """Input rejected before any work (CLI exit code 2, one line on stderr)."""


class ConfigError(BadInput, ValueError):
    """A config value, key or combination is not allowed. The message names the key."""


class DataError(BadInput, ValueError):
    """The data is missing, empty or unreadable. The message names the folder or file."""


class StorageError(BadInput):
    """A study storage cannot be opened or read (bad URL, unreachable server, missing driver, foreign file)."""


def one_line(err: BaseException | str) -> str:
    """An error as one line of text (messages from drivers and servers may span several)."""
    text = str(err) if isinstance(err, BaseException) else err
    return " ".join(text.split())
