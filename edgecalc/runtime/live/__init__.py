"""Stage 4: the frame put together and shown. ``pipeline`` (one frame: check, crop, preprocess,
infer, map back, quantify, smooth, overlay; no threads, no I/O), ``decision`` (the smoothed
call and calcification figures), ``overlay`` (mask, box and HUD), ``recorder`` (video + log),
``loop`` (``edgecalc live``: capture, inference and display threads), ``build`` (from CLI options to
a ready pipeline) and ``demo`` (``edgecalc demo``)."""
