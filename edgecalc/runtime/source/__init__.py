"""Stage 1 of a frame: where it comes from. ``capture`` (camera / capture card / video / URL / DICOM
cine, newest-frame-only for live sources), ``phantom`` (the built-in phantom cine as a source) and
``frame_check`` (reject frames the pipeline cannot use, with a reason). Next stage: ``runtime/locate``."""
