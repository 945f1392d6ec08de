"""The one exception type for problems a user can fix (bad file, bad value, missing weights).

The CLI prints it as a single line and exits with status 2; library callers can catch it.
The message must name the file, key or value and say what to do.
"""


class BenchError(Exception):
    """A user-facing error with an actionable message."""
