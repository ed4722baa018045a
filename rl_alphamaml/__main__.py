"""``python -m rl_alphamaml`` is the ``rl-alphamaml`` command."""

import sys

from rl_alphamaml.cli import main

sys.exit(main())
