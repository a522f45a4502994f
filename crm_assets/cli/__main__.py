"""``python -m crm_assets.cli``: the ``crm`` command."""

import sys

from crm_assets.cli.main import main

sys.exit(main())
