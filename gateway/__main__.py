"""`python -m gateway` is `playbook serve` (how `playbook dev` starts it, in its own process)."""

import sys

from .cli import main

main(["serve", *sys.argv[1:]])
