"""The ``viroscope`` command."""

import click

from .demo import demo
from .orfs import orfs
from .pathoscope import pathoscope
from .scheduler import scheduler
from .up import up


@click.group()
def main():
    """viroscope: find viruses in sequencing data."""


for command in (up, demo, scheduler, pathoscope, orfs):
    main.add_command(command)
