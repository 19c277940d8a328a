"""``python -m platformctl``: the same as the ``platformctl`` script."""

from platformctl.main import main

main()
