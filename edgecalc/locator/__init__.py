"""The nodule locator's offline side (torch, DDTI): training and the measurements on DDTI. The cart
runs the result with ``edgecalc.runtime.locate.learned``.

``python -m edgecalc.locator.train ../shared/data/ddti-nodules`` is the one command that retrains
and re-ships it (docs/locator.md); ``locator.evaluate`` scores it against the classical locator,
``locator.evaluate_scan_area`` checks scan-area detection and the classical locator on DDTI frames.
"""
