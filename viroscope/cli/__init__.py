"""The ``viroscope`` command."""

import click

from .demo import demo
from .orfs import orfs
from .pathoscope import pathoscope
from .up import up


@click.group()
def main():
    """viroscope: find viruses in sequencing data."""


for command in (up, demo, pathoscope, orfs):
    main.add_command(command)
