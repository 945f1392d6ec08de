"""The one exception type for problems a user can fix (bad file, bad value, missing weights).

The CLI prints it as a single line and exits with status 2; library callers can catch it.
The message must name the file, key or value and say what to do.
"""


class BenchError(Exception):
    """A user-facing error with an actionable message."""


class MissingWeightsError(BenchError):
    """A registry weights file is not where it is expected; the message says how to fetch or place it.

    Callers that can go on without the weights (an optional method or metric) catch this type.
    """
