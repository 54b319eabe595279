"""``python -m edgekit``: the ``edgekit`` console script."""
from edgekit.cli.main import main

if __name__ == "__main__":
    main()
