"""``python -m accelsim …`` — the same as the ``accelsim`` command."""
import sys

from accelsim.cli import main

sys.exit(main())
