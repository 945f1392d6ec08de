"""One writer per folder: a lock on the folder itself turns a concurrent second writer into a clear error.

`fcntl.flock` on the folder's own file descriptor writes nothing into the folder (a foreign folder
stays untouched) and is released by the kernel when its process ends, however it ends, so a killed
build or run never leaves a stale lock behind.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

from bench.errors import BenchError


@contextlib.contextmanager
def folder_lock(folder: str | Path, what: str):
    """Create `folder` if needed and hold an exclusive lock on it for the block.

    A BenchError names the folder when another process holds the lock; `what` names the folder's
    kind in that message ("test set", "run folder"). A folder this call created and left empty is
    removed again when the block fails, so a refused command leaves nothing behind.
    """
    folder = Path(folder)
    created = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BenchError(f"{folder}: this {what} is being written by another process right now; wait for it "
                             "to finish, or choose another folder") from None
        try:
            yield folder
        except BaseException:
            if created and not any(folder.iterdir()):
                folder.rmdir()
            raise
    finally:
        os.close(fd)  # closing releases the lock
