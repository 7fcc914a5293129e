"""``ringspot demo``: the main job end to end on the embedded default stack.

Starts ``ringspot up`` in the background unless an API already answers, then, as the
administrator: imports the plant-virus reference, builds its index, creates samples from
real reads (showing their quality), runs Pathoscope on the RpRSV sample and prints the
viruses found; then installs the vFam profiles, runs NuVs and BLASTs the longest contig
with the local BLAST+ back end.
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
from .remote import print_diagnosis_table
from .supervisor import port_open

console = Console(highlight=False, soft_wrap=True)
SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
ADMIN_USER, ADMIN_PASSWORD = "admin", "ringspot-demo"


def start_stack(env: dict) -> subprocess.Popen:
    log = open(Path(env["DATA_PATH"]) / "up.log", "ab")  # noqa: SIM115  (the stack's log outlives this call)
    return subprocess.Popen(
        [sys.executable, "-m", "ringspot.cli", "up"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


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
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}% {task.fields[step]}"),
        console=console,
    ) as progress:
        task = progress.add_task(label, total=1.0, step="")
        return api.wait_process(
            process_id, lambda d: progress.update(task, completed=d["progress"], step=d.get("step") or "")
        )


def run_demo(api: Client, nuvs: bool) -> str:
    """Run every stage; returns the path of the Pathoscope report page in the browser client."""
    # Sample names are unique: a suffix per run keeps the demo safe to run again.
    context: dict = {"run": time.strftime("%Y%m%d-%H%M%S")}
    stages = [demo_reference, demo_index, demo_samples, demo_pathoscope]
    if nuvs:
        stages += [demo_hmms, demo_nuvs]
    for number, stage in enumerate(stages, 1):
        console.rule(f"[bold]{number}. {stage.__doc__}")
        stage(api, context)
    table = Table("process", "type", "state", "step", title="Processes")
    for doc in api.get("/api/processes", per_page=30)["documents"]:
        table.add_row(doc["id"], doc["type"], doc["state"], doc.get("step") or "")
    console.print(table)
    return f"/analyses/{context['pathoscope']['id']}"


def demo_reference(api: Client, context: dict) -> None:
    """Import the plant-virus reference"""
    path = SHARED_DATA / "reference" / "ref-plant-viruses-v1.5.0.reference.json.gz"
    upload = api.upload(path, "reference")
    ref = api.post(
        "/api/refs", {"name": "Plant viruses", "organism": "virus", "data_type": "genome", "import_from": upload["id"]}
    )
    follow(api, ref["process"]["id"], "import_reference")
    ref = api.get(f"/api/refs/{ref['id']}")
    console.print(f"reference {ref['id']}: {ref['otu_count']} OTUs, {ref['unbuilt_change_count']} unbuilt changes")
    context["ref"] = ref


def demo_index(api: Client, context: dict) -> None:
    """Build its Bowtie2 index"""
    index = api.post(f"/api/refs/{context['ref']['id']}/indexes")
    follow(api, index["job"]["id"], "build_index")
    index = api.get(f"/api/indexes/{index['id']}")
    console.print(
        f"index {index['id']} version {index['version']}: ready={index['ready']}, {len(index['files'])} files"
    )


def create_sample(api: Client, name: str, paths: list[Path]) -> dict:
    uploads = [api.upload(path, "reads") for path in paths]
    return api.post("/api/samples", {"name": name, "files": [u["id"] for u in uploads]})


def demo_samples(api: Client, context: dict) -> None:
    """Create samples from real reads and compute their quality"""
    samples = SHARED_DATA / "samples"
    pending = {
        name: create_sample(api, f"{name} {context['run']}", sorted((samples / folder).glob("*.fq.gz")))
        for name, folder in (("Example paired 50 bp", "example-paired-50bp"), ("RpRSV NextSeq", "rprsv-paired-nextseq"))
    }
    table = Table("sample", "reads", "paired", "encoding", "GC %", "length", title="Quality")
    for name, sample in pending.items():
        follow(api, sample["job"]["id"], f"create_sample {name}")
        sample = api.get(f"/api/samples/{sample['id']}")
        quality = sample["quality"]
        table.add_row(
            name,
            str(quality["count"]),
            str(sample["paired"]),
            quality["encoding"],
            str(quality["gc"]),
            "-".join(str(n) for n in quality["length"]),
        )
        context[name] = sample
    console.print(table)


def demo_pathoscope(api: Client, context: dict) -> None:
    """Run Pathoscope on the RpRSV sample and show its diagnosis"""
    sample = context["RpRSV NextSeq"]
    analysis = api.post(
        f"/api/samples/{sample['id']}/analyses", {"workflow": "pathoscope_bowtie", "ref_id": context["ref"]["id"]}
    )
    follow(api, analysis["job"]["id"], "pathoscope_bowtie")
    analysis = api.get(f"/api/analyses/{analysis['id']}")
    context["pathoscope"] = analysis
    print_diagnosis_table(analysis)


def demo_hmms(api: Client, context: dict) -> None:
    """Install the vFam HMM profiles"""
    hmm = SHARED_DATA / "hmm" / "hmm7"
    profiles = api.upload(hmm / "profiles.hmm.gz", "hmm")
    annotations = api.upload(hmm / "annotations.json.gz", "hmm")
    process = api.post(
        "/api/hmms/status/updates", {"upload_id": profiles["id"], "annotations_upload_id": annotations["id"]}
    )
    follow(api, (process.get("process") or process)["id"], "install_hmms")
    console.print(f"{api.get('/api/hmms')['found_count']} profiles installed")


def demo_nuvs(api: Client, context: dict) -> None:
    """Run NuVs on the RpRSV sample and BLAST its longest contig locally"""
    sample = context["RpRSV NextSeq"]
    analysis = api.post(f"/api/samples/{sample['id']}/analyses", {"workflow": "nuvs", "ref_id": context["ref"]["id"]})
    follow(api, analysis["job"]["id"], "nuvs")
    analysis = api.get(f"/api/analyses/{analysis['id']}")
    contigs = analysis["results"]["hits"]
    table = Table("contig", "length", "ORFs", "HMM hits", title=f"NuVs: the 10 longest of {len(contigs)} contigs")
    for contig in sorted(contigs, key=lambda c: -len(c["sequence"]))[:10]:
        orfs = contig["orfs"]
        table.add_row(
            str(contig["index"]),
            str(len(contig["sequence"])),
            str(len(orfs)),
            str(sum(len(orf["hits"]) for orf in orfs)),
        )
    console.print(table)
    if not contigs:
        return
    longest = max(contigs, key=lambda contig: len(contig["sequence"]))
    response = api.request("PUT", f"/api/analyses/{analysis['id']}/{longest['index']}/blast", json={})
    process_id = response.get("process", {}).get("id") if isinstance(response.get("process"), dict) else None
    if process_id:
        follow(api, process_id, "blast")
    blast = api.get(f"/api/analyses/{analysis['id']}")["results"]["hits"][longest["index"]].get("blast") or {}
    hits = (blast.get("result") or {}).get("hits", [])
    console.print(
        f"BLAST of contig {longest['index']} ({len(longest['sequence'])} bp): "
        + (
            f"best hit {hits[0]['accession']} {hits[0]['name']} ({hits[0]['identity']} identities)"
            if hits
            else f"no hit ({blast.get('error') or 'none found'})"
        )
    )


@click.command()
@click.option("--url", default=None, help="Use an API already running here instead of starting one.")
@click.option("--nuvs/--no-nuvs", default=True, help="Also run NuVs and BLAST the longest contig locally.")
def demo(url: str | None, nuvs: bool):
    """Run the main job end to end on the embedded default stack and print the result."""
    settings = from_env()
    data_path = Path(settings.data_path)
    data_path.mkdir(parents=True, exist_ok=True)
    url = url or f"http://127.0.0.1:{settings.port}"
    env = {
        **os.environ,
        "DATA_PATH": str(data_path),
        "RINGSPOT_ADMIN_USER": ADMIN_USER,
        "RINGSPOT_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "RINGSPOT_BLAST_BACKEND": "local",
    }
    stack = None
    if not port_open("127.0.0.1", settings.port):
        console.print(f"starting the stack (logs in {data_path / 'up.log'}) …")
        stack = start_stack(env)
    try:
        api = Client(url)
        wait_for_api(api)
        api.login(ADMIN_USER, ADMIN_PASSWORD)
        key = api.create_key("demo")
        report = run_demo(Client(url, ADMIN_USER, key), nuvs)
    except ApiError as error:
        raise click.ClickException(str(error)) from None
    finally:
        if stack is not None:
            os.killpg(stack.pid, signal.SIGTERM)
            stack.wait(timeout=30)
    serving = "" if stack is None else "; `ringspot up` serves it again"
    console.print(f"The report in a browser: {url}{report} (sign in as {ADMIN_USER} / {ADMIN_PASSWORD}{serving})")
