"""A PNG's chunk lengths checked against the file's size before OpenCV decodes it.

OpenCV 5's PNG reader allocates the length a chunk declares before reading it: a 372-byte file whose
PLTE chunk claims 2.25 GB peaked at 2.1 GiB (``cv2.imread`` and ``cv2.imdecode`` alike) and then
returned None (found by the long fuzz run, docs/reliability.md failure 36). A length that runs past
the end of the file cannot be a readable chunk, so both image readers refuse such a file first, naming
the chunk. Standard library only: the torch-free runtime reads images through it.
"""

from __future__ import annotations

import struct

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_chunk_problem(data: bytes) -> str | None:
    """Why ``data`` (a PNG) cannot be decoded within its own size: a chunk whose declared length runs
    past the end of the file; None when every chunk up to IEND (or the end) fits, or it is no PNG."""
    if not data.startswith(PNG_SIGNATURE):
        return None
    at = len(PNG_SIGNATURE)
    while at + 8 <= len(data):
        (length,), kind = struct.unpack(">I", data[at:at + 4]), data[at + 4:at + 8]
        end = at + 12 + length  # length, type, data, CRC
        if end > len(data):
            return (f"PNG chunk {kind.decode('latin-1')!r} at byte {at} claims {length} bytes, past the end of the "
                    f"file ({len(data)} bytes)")
        if kind == b"IEND":
            return None
        at = end
    return None
