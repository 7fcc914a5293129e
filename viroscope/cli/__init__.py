"""The ``viroscope`` command."""

import click

from .up import up


@click.group()
def main():
    """viroscope: find viruses in sequencing data."""


main.add_command(up)


def _register_optional():
    from importlib import import_module

    for module, name in (("pathoscope", "pathoscope"), ("orfs", "orfs"), ("demo", "demo")):
        try:
            main.add_command(getattr(import_module(f"{__name__}.{module}"), name))
        except ImportError:
            pass


_register_optional()
