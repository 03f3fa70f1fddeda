"""Stage 2 of a frame: where the nodule is and which square the model sees.

In order: ``scan_area`` (the ultrasound image inside the scanner's screen), ``learned`` (the shipped
nodule locator, onnxruntime) or ``classical`` (darkest compact region, the fallback), ``tracker``
(one box per nodule across frames), ``crop_geometry`` (the square crop around a box) and ``cropper``
(per frame: fixed ROI, hand-drawn box, or the locator every few frames, smoothed). ``images`` runs
the same path on still images (``edgecalc locate``). The locator's training is ``edgecalc/locator``.
Next stage: ``runtime/engine``.
"""
