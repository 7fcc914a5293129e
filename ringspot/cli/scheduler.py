"""``ringspot scheduler``: send periodic maintenance messages (one scheduler per deployment)."""

from __future__ import annotations

import signal
import threading

import click

#: Seconds between two runs of the process reaper.
REAP_INTERVAL = 30


@click.command()
@click.option("--interval", default=REAP_INTERVAL, show_default=True, help="Seconds between reaper runs.")
def scheduler(interval: int):
    """Enqueue the process reaper every INTERVAL seconds until stopped."""
    from ..tasks.maintenance import reap_processes, sweep_webhooks
    from ..tasks.webhooks import install_dispatcher

    install_dispatcher()

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    click.echo(f"scheduler: reaping stale processes every {interval} s")
    while not stop.wait(interval):
        try:
            reap_processes.send()
            sweep_webhooks.send()
        except Exception as error:  # the broker may be restarting; try again next tick
            click.echo(f"scheduler: could not enqueue the reaper: {error}", err=True)
