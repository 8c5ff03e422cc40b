"""User-facing errors.

Every problem a user can cause (bad data, a wrong path, an unknown key) raises a
:class:`CrossmodalError` whose message is one line: what is wrong, where, and how to fix it.
The command line prints that line and exits with status 2, without a traceback.
"""


class CrossmodalError(Exception):
    """A problem with the user's input; the message says what, where and how to fix it."""


class DataError(CrossmodalError, ValueError):
    """Invalid data: shapes, dtypes, non-finite values, unknown file layouts."""


class ConfigError(CrossmodalError, ValueError):
    """An unknown or invalid configuration key or value."""


def did_you_mean(word: str, choices) -> str:
    """``"; did you mean 'x'?"`` for the closest of ``choices`` to ``word``, or ``""``: the one
    hint every unknown-name error appends."""
    import difflib

    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1)
    return f"; did you mean {close[0]!r}?" if close else ""
