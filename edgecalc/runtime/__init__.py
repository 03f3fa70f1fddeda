"""The live cart runtime. numpy, OpenCV and one inference engine only: this package never imports torch.

Subpackages in the order a frame meets them:

1. ``source/``: where frames come from (capture card, camera, video file or URL, DICOM cine, the
   built-in phantom) and the check that rejects unusable frames;
2. ``locate/``: scan area, nodule locator (learned, classical fallback), box tracker, and the
   square crop the model sees (``crop_geometry``: the square; ``cropper``: which box, per frame);
3. ``engine/``: the export bundle, the inference backends, and which backend runs (``select``,
   with the per-machine ``latency_cache``);
4. ``live/``: one frame through all of it (``pipeline``), the threaded loop (``loop``), its
   assembly from CLI options (``build``), overlay, decision smoothing, recorder and the demo.

Three modules stay at this level because they serve more than one stage or more than the live loop:
``quantify`` (calcification sizes and kinds from a mask: used by the frame pipeline, by ``analyze``
and by offline evaluation), ``analyze`` (the whole path on stills and DICOM files, ``edgecalc
analyze``: source + locate + engine without the live loop) and ``shipped`` (where the package keeps
its default bundle and locator). The DICOM reader itself is ``edgecalc.data.dicom`` (a file format
shared with ``data import-dicom``). Offline evaluation tools live outside this package
(``edgecalc/locator``, ``edgecalc/eval``, ``edgecalc/bench``).
"""
