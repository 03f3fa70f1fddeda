"""The live runtime's mode names, in a module that imports nothing, so the CLI builds its ``--crop`` and
``--loop`` choices from them without loading OpenCV (``build`` and ``loop`` import them from here)."""

from __future__ import annotations

#: ``--crop``: scan-area detection + nodule locator | a box drawn with the mouse | the ``--roi`` box.
CROP_MODES = ("auto", "manual", "fixed")
#: ``--loop`` names -> ``LiveOptions(pipelined=...)`` (auto: pipelined for GPU engines only).
LOOP_MODES: dict[str, bool | None] = {"auto": None, "pipelined": True, "serial": False}
