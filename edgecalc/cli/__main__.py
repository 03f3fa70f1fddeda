"""``python -m edgecalc.cli ...`` = ``edgecalc ...`` (the form long background jobs were started with)."""

from edgecalc.cli import main

if __name__ == "__main__":
    main()
