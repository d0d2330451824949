"""``python -m accelsim …`` — the same as the ``accelsim`` command."""
from accelsim.cli import main

raise SystemExit(main())
