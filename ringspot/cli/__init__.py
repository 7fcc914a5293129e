"""The ``ringspot`` command."""

import click

from .demo import demo
from .manage import COMMANDS as MANAGE_COMMANDS
from .orfs import orfs
from .pathoscope import pathoscope
from .remote import COMMANDS as REMOTE_COMMANDS
from .scheduler import scheduler
from .up import up


@click.group()
@click.version_option(package_name="ringspot", prog_name="ringspot")
@click.option("--url", default=None, envvar="RINGSPOT_URL", help="Server URL (default http://127.0.0.1:9950).")
@click.pass_context
def main(ctx, url):
    """ringspot: find viruses in sequencing data."""
    ctx.obj = {"url": url}


for command in (up, demo, scheduler, pathoscope, orfs, *REMOTE_COMMANDS, *MANAGE_COMMANDS):
    main.add_command(command)
