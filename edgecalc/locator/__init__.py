"""Training the learned nodule locator (torch). The cart runs the result with ``edgecalc.runtime.learned_locator``.

``python -m edgecalc.locator.train ../shared/data/ddti-nodules`` is the one command that retrains
and re-ships it (docs/locator.md).
"""
