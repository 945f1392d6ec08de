"""The one exception type for problems a user can fix (bad file, bad value, missing weights).

The CLI prints it as a single line and exits with status 2; library callers can catch it.
The message must name the file, key or value and say what to do. `describe_os_error` does the same
for an OSError (a full disk, a read-only folder, a file where a folder should be).
"""

import errno


class BenchError(Exception):
    """A user-facing error with an actionable message."""


# What each OSError means for the user, and what to do about it.
OS_ERROR_HINTS = {
    errno.EACCES: "permission denied; choose a folder you can write to or fix its permissions",
    errno.EPERM: "operation not permitted; choose a folder you can write to or fix its permissions",
    errno.EROFS: "read-only file system; choose a folder on a writable disk",
    errno.ENOSPC: "no space left on the device; free some space (or choose another disk) and rerun",
    errno.EDQUOT: "disk quota exceeded; free some space (or choose another disk) and rerun",
    errno.ENOTDIR: "a part of this path is a file, not a folder; choose another path",
    errno.EEXIST: "already exists and is not a folder; choose another path or remove it",
    errno.EISDIR: "is a folder, but a file was expected",
    errno.ENOENT: "no such file or folder",
    errno.ENAMETOOLONG: "the path is too long",
}


def describe_os_error(exc: OSError) -> str:
    """One line: the path(s), the cause and what to do, e.g. for a full disk or a read-only folder."""
    paths = " -> ".join(str(p) for p in (exc.filename, exc.filename2) if p is not None)
    cause = OS_ERROR_HINTS.get(exc.errno) or exc.strerror or type(exc).__name__
    if exc.errno not in OS_ERROR_HINTS and exc.strerror is None:
        cause = f"{cause}: {exc}"
    return f"{paths}: {cause}" if paths else cause


class MissingWeightsError(BenchError):
    """A registry weights file is not where it is expected; the message says how to fetch or place it.

    Callers that can go on without the weights (an optional method or metric) catch this type.
    """
