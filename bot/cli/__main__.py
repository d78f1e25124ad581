"""`python -m bot.cli`: the `deskbridge` command without the installed script."""

from bot.cli import main

main()
