"""The request class: uploads never touch the disk.

Werkzeug spools an uploaded file over 500 KB to a temporary file in the system temp folder. A photo of a
child or her health plan must not sit unencrypted in /tmp (R62), even briefly, and a crash must not leave
one behind. Requests are capped at MAX_CONTENT_LENGTH (20 MiB) with at most 100 parts, so keeping the file
in memory is bounded; the checked copy is encrypted before it is stored.
"""

from __future__ import annotations

import io
from typing import IO

from flask import Request


class InMemoryUploadRequest(Request):
    def _get_file_stream(self, total_content_length: int | None, content_type: str | None,
                         filename: str | None = None, content_length: int | None = None) -> IO[bytes]:
        return io.BytesIO()
