"""Studies: many trainings and evaluations under one split, gathered into one table.

``sweep`` (the paper's Table 1: mask fraction × fold) and ``compare`` (Table 2: methods × fold) train
runs through ``edgecalc.train`` and score them through ``edgecalc.eval``, so they sit one floor above
both; nothing below imports them (``tests/test_import_contract.py``).
"""
