"""``python -m requests_twitch``: the requests-twitch command."""

import sys

from .cli import main

sys.exit(main())
