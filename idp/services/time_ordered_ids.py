"""Row ids that sort by creation time: UUIDv7 (RFC 9562 5.7).

The token tables hold millions of rows and a B-tree index per id column. A random (v4) id lands each
new entry on a random leaf of the primary-key index, and of the grant_id indexes that name a code's
id, so at 10^7 rows nearly every insert reads a leaf page that is not in shared buffers and dirties
it (a full-page image in the WAL after each checkpoint). Time-ordered ids append at the right edge,
whose few pages stay cached, whatever the table's size. The value is still a 36-character UUID.
"""
from __future__ import annotations

import os
import time
import uuid


def time_ordered_id() -> str:
    """A UUIDv7: 48 bits of Unix time in milliseconds, the version and variant, 74 random bits."""
    value = (time.time_ns() // 1_000_000) << 80 | int.from_bytes(os.urandom(10), "big")
    value = value & ~(0xF << 76) | 0x7 << 76  # version 7
    value = value & ~(0x3 << 62) | 0x2 << 62  # RFC 9562 variant
    return str(uuid.UUID(int=value))

