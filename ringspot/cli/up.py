"""``ringspot up``: the whole stack on one machine."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import click
from rich.console import Console

from ..core.files import make_private_folders
from ..core.settings import from_env
from .supervisor import (
    Supervisor,
    database_command,
    host_port,
    port_open,
    read_procfile,
    redis_command,
    wait_for_port,
)

console = Console(highlight=False, soft_wrap=True)


@click.command()
@click.option("--procfile", default="Procfile", type=click.Path(dir_okay=False), help="Procfile to run.")
@click.option("--only", multiple=True, help="Run only these process types (repeatable).")
def up(procfile: str, only: tuple[str, ...]):
    """Run the database, Redis, the API and one worker pool per queue until Ctrl-C."""
    settings = from_env()
    # Everything the stack writes (the file store, the database, Redis's append-only file, logs) is
    # private to the service's user: the children inherit this umask.
    os.umask(0o077)
    data_path = Path(settings.data_path)
    make_private_folders(data_path / "logs")
    data_path.chmod(0o700)
    env = {
        **os.environ,
        "DATA_PATH": str(data_path),
        "MONGODB_URI": settings.mongodb_uri,
        "REDIS_URL": settings.redis_url,
        "RINGSPOT_PORT": str(settings.port),
    }
    procfile_path = Path(procfile)
    if not procfile_path.exists():
        procfile_path = Path(__file__).resolve().parents[2] / "Procfile"
    try:
        commands = read_procfile(procfile_path, env)
    except (OSError, ValueError) as error:
        raise click.ClickException(str(error)) from None
    if only:
        commands = [c for c in commands if c.name in only]

    supervisor = Supervisor(env, log=console.print)
    for name, url, default_port, build in (
        ("db", settings.mongodb_uri, 27017, database_command),
        ("redis", settings.redis_url, 6379, redis_command),
    ):
        host, port = host_port(url, default_port)
        if port_open(host, port):
            console.print(f"[dim]{name}: using the server already listening on {host}:{port}[/dim]")
            continue
        supervisor.start(build(url, data_path))
        if not wait_for_port(host, port):
            supervisor.stop()
            raise click.ClickException(f"{name} did not start on {host}:{port}; see {data_path / 'logs'}")

    for command in commands:
        supervisor.start(command)
    # Ctrl-C and SIGTERM end the watch; a second Ctrl-C during the ordered stop changes nothing.
    # A handler of our own also stops us when whatever started us ignores SIGINT (a background job).
    signal.signal(signal.SIGTERM, lambda *_: supervisor.stopping.set())
    signal.signal(signal.SIGINT, lambda *_: supervisor.stopping.set())
    console.print(f"[bold]ringspot[/bold] API on http://{settings.host}:{settings.port} — Ctrl-C stops everything")
    status = supervisor.watch()
    console.print("[bold]stopping…[/bold]")
    supervisor.stop()
    console.print("[bold]stopped[/bold]")
    sys.exit(status)
