"""Command-line interface: the only package that imports typer."""

__all__: list[str] = []
