"""``python -m service_ambitions`` runs the command-line tool."""

from service_ambitions.cli.app import main

main()
