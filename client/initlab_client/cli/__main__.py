"""``python -m initlab_client.cli``: the ``initlab`` command."""

from . import main

if __name__ == "__main__":
    main()
