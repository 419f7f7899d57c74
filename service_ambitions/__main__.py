"""``python -m service_ambitions`` runs the command-line tool."""

from .cli.app import main

main()
