"""`python -m imgpipe.cli`: the same as the `imgpipe` command."""

from . import main

main()
