"""``python -m edgecalc ...`` = ``edgecalc ...``; the form torchrun launches for DDP training:

    torchrun --nproc_per_node 2 -m edgecalc train DATA --mask-fraction 0.3 --device cpu

At the top of the package beside ``cli/``: nothing outside ``edgecalc/cli/`` imports the CLI but this
entry point (tests/test_import_contract.py).
"""

from edgecalc.cli import main

if __name__ == "__main__":
    main()
