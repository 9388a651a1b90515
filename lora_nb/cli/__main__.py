"""``python -m lora_nb.cli``: the same as the ``lora-nb`` command."""
import sys

from . import main

sys.exit(main())
