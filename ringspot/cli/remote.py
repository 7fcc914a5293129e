"""API client commands: ``ringspot refs|samples|analyses|alignments|processes ...`` against any server.

The server is ``--url`` (or ``RINGSPOT_URL``, or the saved config); credentials are
``RINGSPOT_API_KEY`` as ``user:key`` (or ``RINGSPOT_USER`` + ``RINGSPOT_API_KEY``), or
what ``ringspot login`` saved in ``~/.config/ringspot/config.json``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from .client import ApiError, Client, ProcessFailed

console = Console(highlight=False, soft_wrap=True)


def config_path() -> Path:
    return Path(os.environ.get("RINGSPOT_CONFIG", Path.home() / ".config" / "ringspot" / "config.json"))


DEFAULT_URL = "http://127.0.0.1:9950"


def load_config() -> dict:
    try:
        return json.loads(config_path().read_text())
    except (OSError, ValueError):
        return {}


def credentials(config: dict) -> tuple[str | None, str | None]:
    key = os.environ.get("RINGSPOT_API_KEY")
    if key:
        user, sep, raw = key.partition(":")
        if sep:
            return user, raw
        return os.environ.get("RINGSPOT_USER") or config.get("user"), key
    return config.get("user"), config.get("key")


def make_client(ctx: click.Context) -> Client:
    config = load_config()
    url = ctx.obj.get("url") or os.environ.get("RINGSPOT_URL") or config.get("url") or DEFAULT_URL
    user, key = credentials(config)
    if not key:
        raise click.ClickException("no API key: set RINGSPOT_API_KEY=user:key or run `ringspot login`")
    return Client(url, user, key)


def fail_on_api_errors(function):
    """Turn API errors into a one-line message and exit status 1, never a traceback."""
    import functools

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except (ApiError, ProcessFailed) as error:
            raise click.ClickException(str(error))
        except OSError as error:
            raise click.ClickException(f"cannot reach the server: {error}")

    return wrapper


def print_json(data) -> None:
    click.echo(json.dumps(data, indent=2))


def follow_process(api: Client, process_id: str, label: str) -> dict:
    """Poll a process with backoff, showing its step and progress."""
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}% {task.fields[step]}"),
    )
    with Progress(*columns, console=Console(stderr=True)) as progress:
        task = progress.add_task(label, total=1.0, step="")
        return api.wait_process(
            process_id, lambda d: progress.update(task, completed=d["progress"], step=d.get("step") or "")
        )


def upload_with_progress(api: Client, path: Path, upload_type: str) -> dict:
    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn())
    with Progress(*columns, console=Console(stderr=True)) as progress:
        task = progress.add_task(path.name, total=path.stat().st_size)
        return api.upload(path, upload_type, lambda n: progress.advance(task, n))


# ---------------------------------------------------------------- login


@click.command()
@click.option("--url", default=None, help="Server URL.")
@click.option("--user", prompt=True)
@click.option("--password", prompt=True, hide_input=True)
@fail_on_api_errors
def login(url, user, password):
    """Sign in once, create an API key and save it in the config file."""
    url = url or os.environ.get("RINGSPOT_URL") or DEFAULT_URL
    api = Client(url)
    api.login(user, password)
    key = api.create_key("ringspot-cli")
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"url": url, "user": user, "key": key}))
    path.chmod(0o600)
    click.echo(f"saved an API key for {user} in {path}")


# ---------------------------------------------------------------- references


@click.group()
def refs():
    """References."""


@refs.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--name", default=None, help="Reference name (default: the file name).")
@click.option("--wait/--no-wait", default=True, help="Wait until the import process ends.")
@click.pass_context
@fail_on_api_errors
def import_reference(ctx, file: Path, name, wait):
    """Upload a reference.json.gz and import it as a new reference."""
    api = make_client(ctx)
    upload = upload_with_progress(api, file, "reference")
    ref = api.post(
        "/api/refs",
        {
            "name": name or file.name.split(".")[0],
            "data_type": "genome",
            "organism": "virus",
            "import_from": upload["id"],
        },
    )
    if wait:
        follow_process(api, ref["process"]["id"], "import_reference")
        ref = api.get(f"/api/refs/{ref['id']}")
    print_json(ref)


@refs.command("list")
@click.pass_context
@fail_on_api_errors
def list_refs(ctx):
    """List references."""
    api = make_client(ctx)
    table = Table("id", "name", "OTUs", "unbuilt changes", "latest build")
    for ref in api.get("/api/refs", per_page=100)["documents"]:
        build = ref.get("latest_build") or {}
        table.add_row(
            ref["id"],
            ref["name"],
            str(ref.get("otu_count", "")),
            str(ref.get("unbuilt_change_count", "")),
            str(build.get("version", "")),
        )
    console.print(table)


@refs.command("build")
@click.argument("ref_id")
@click.option("--wait/--no-wait", default=True)
@click.pass_context
@fail_on_api_errors
def build_reference(ctx, ref_id, wait):
    """Build a new index of a reference."""
    api = make_client(ctx)
    index = api.post(f"/api/refs/{ref_id}/indexes")
    if wait:
        follow_process(api, index["job"]["id"], "build_index")
        index = api.get(f"/api/indexes/{index['id']}")
    print_json({k: v for k, v in index.items() if k != "manifest"})


# ---------------------------------------------------------------- samples


@click.group()
def samples():
    """Samples."""


@samples.command("upload")
@click.argument("reads", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--name", required=True, help="Sample name.")
@click.option("--library-type", type=click.Choice(["normal", "srna", "amplicon"]), default="normal")
@click.option("--wait/--no-wait", default=True)
@click.pass_context
@fail_on_api_errors
def upload_sample(ctx, reads: tuple[Path, ...], name, library_type, wait):
    """Upload one (single-end) or two (paired) FASTQ files and create a sample."""
    if len(reads) > 2:
        raise click.UsageError("give one or two read files")
    api = make_client(ctx)
    uploads = [upload_with_progress(api, path, "reads") for path in reads]
    sample = api.post("/api/samples", {"name": name, "files": [u["id"] for u in uploads], "library_type": library_type})
    if wait:
        follow_process(api, sample["job"]["id"], "create_sample")
        sample = api.get(f"/api/samples/{sample['id']}")
    quality = sample.get("quality") or {}
    print_json(
        {k: sample.get(k) for k in ("id", "name", "ready", "paired")}
        | {"reads": quality.get("count"), "gc": quality.get("gc")}
    )


# ---------------------------------------------------------------- analyses


@click.group()
def analyses():
    """Analyses."""


@analyses.command("create")
@click.argument("sample_id")
@click.option("--ref", "ref_id", required=True, help="Reference id.")
@click.option("--workflow", type=click.Choice(["pathoscope_bowtie", "nuvs"]), default="pathoscope_bowtie")
@click.option("--subtraction", "subtractions", multiple=True, help="Subtraction id (repeatable).")
@click.pass_context
@fail_on_api_errors
def create_analysis(ctx, sample_id, ref_id, workflow, subtractions):
    """Start an analysis of a sample against a reference's latest index."""
    api = make_client(ctx)
    analysis = api.post(
        f"/api/samples/{sample_id}/analyses",
        {"workflow": workflow, "ref_id": ref_id, "subtractions": list(subtractions)},
    )
    click.echo(analysis["id"])


@analyses.command("await")
@click.argument("analysis_id")
@click.pass_context
@fail_on_api_errors
def await_analysis(ctx, analysis_id):
    """Wait for an analysis, showing its job's step and progress; exit 1 if it fails."""
    api = make_client(ctx)
    analysis = api.get(f"/api/analyses/{analysis_id}")
    if not analysis.get("ready"):
        follow_process(api, analysis["job"]["id"], analysis.get("workflow", "analysis"))
    click.echo(f"analysis {analysis_id} is ready")


@analyses.command("get")
@click.argument("analysis_id")
@click.option("--format", "output", type=click.Choice(["table", "json"]), default="table")
@click.pass_context
@fail_on_api_errors
def get_analysis(ctx, analysis_id, output):
    """Show an analysis: a table of the viruses found, or the whole document as JSON."""
    api = make_client(ctx)
    analysis = api.get(f"/api/analyses/{analysis_id}")
    if output == "json":
        print_json(analysis)
        return
    print_hits_table(analysis)


def print_hits_table(analysis: dict) -> None:
    results = analysis.get("results") or {}
    if not analysis.get("ready"):
        click.echo(f"analysis {analysis['id']} is not ready yet")
        return
    if analysis.get("workflow") == "nuvs":
        table = Table("contig", "length", "ORFs", "HMM hits", title=f"NuVs {analysis['id']}")
        for hit in results.get("hits", []):
            orfs = hit.get("orfs", [])
            table.add_row(
                str(hit["index"]),
                str(len(hit["sequence"])),
                str(len(orfs)),
                str(sum(len(o.get("hits", [])) for o in orfs)),
            )
        console.print(table)
        return
    table = Table(
        "OTU",
        "pi",
        "reads",
        "coverage",
        "depth",
        title=f"Pathoscope {analysis['id']} ({results.get('read_count')} reads)",
    )
    for otu in results.get("otus") or results.get("hits", []):
        table.add_row(
            str(otu.get("name") or otu.get("id")),
            f"{otu.get('pi', 0):.4f}",
            str(otu.get("reads", "")),
            f"{otu.get('coverage', 0):.3f}",
            str(otu.get("depth", "")),
        )
    console.print(table)


# ---------------------------------------------------------------- alignments


@click.group()
def alignments():
    """Alignments of a sample's reads to one genome, with coverage plots."""


def job_id_of(alignment: dict) -> str:
    """The job id in an alignment's ``{"$ref": "/api/jobs/<id>"}``."""
    return alignment["job"]["$ref"].rsplit("/", 1)[1]


@alignments.command("create")
@click.argument("sample_id")
@click.option("--sequence", "sequence_id", default=None, help="Sequence id.")
@click.option("--accession", default=None, help="Accession of the sequence, in the reference given by --ref.")
@click.option("--ref", "ref_id", default=None, help="Reference id (with --accession).")
@click.pass_context
@fail_on_api_errors
def create_alignment(ctx, sample_id, sequence_id, accession, ref_id):
    """Align a sample's reads to one sequence (--sequence ID, or --accession ACC --ref REF); prints its id."""
    if (sequence_id is None) == (accession is None):
        raise click.UsageError("give --sequence ID, or --accession ACC with --ref REF")
    if accession is not None and ref_id is None:
        raise click.UsageError("--accession needs --ref")
    body = {"sequence_id": sequence_id} if sequence_id else {"accession": accession, "ref_id": ref_id}
    api = make_client(ctx)
    click.echo(api.post(f"/api/samples/{sample_id}/alignments", body)["id"])


@alignments.command("await")
@click.argument("alignment_id")
@click.pass_context
@fail_on_api_errors
def await_alignment(ctx, alignment_id):
    """Wait for an alignment, showing its job's step and progress; exit 1 if it fails."""
    api = make_client(ctx)
    alignment = api.get(f"/api/alignments/{alignment_id}")
    if not alignment["complete"]:
        try:
            follow_process(api, job_id_of(alignment), "alignment")
        except ProcessFailed:
            pass  # the alignment says why
        alignment = api.get(f"/api/alignments/{alignment_id}")
    if not alignment["success"]:
        raise click.ClickException(f"alignment {alignment_id} failed: {alignment.get('error_msg')}")
    click.echo(f"alignment {alignment_id} is complete: {summary(alignment)}")


def summary(alignment: dict) -> str:
    stats = alignment.get("statistics") or {}
    identity = stats.get("identity")
    return (
        f"{stats.get('mapped_reads', 0):,} reads mapped to {alignment['reference'].get('accession')}, "
        f"breadth {stats.get('breadth', 0):.1%}, mean depth {stats.get('mean_depth', 0):.1f}x, "
        f"identity {'-' if identity is None else f'{identity:.2f}%'}"
    )


def alignment_state(alignment: dict) -> str:
    if not alignment["complete"]:
        return "running"
    return "complete" if alignment["success"] else "failed"


@alignments.command("get")
@click.argument("alignment_id")
@click.option("--format", "output", type=click.Choice(["table", "json"]), default="table")
@click.pass_context
@fail_on_api_errors
def get_alignment(ctx, alignment_id, output):
    """Show an alignment: its reference, state and statistics, or the whole document as JSON."""
    api = make_client(ctx)
    alignment = api.get(f"/api/alignments/{alignment_id}")
    if output == "json":
        print_json(alignment)
        return
    reference, stats = alignment["reference"], alignment.get("statistics") or {}
    table = Table("field", "value", title=f"Alignment {alignment_id}")
    rows = [
        ("sample", alignment["sample"]["$ref"].rsplit("/", 1)[1]),
        (
            "sequence",
            f"{reference.get('accession')} ({reference.get('sequence_id')}) {reference.get('definition') or ''}",
        ),
        ("reference", f"{reference.get('name')} ({reference.get('id')})"),
        ("state", alignment_state(alignment)),
        ("error", alignment.get("error_msg") or ""),
        ("mapped reads", f"{stats['mapped_reads']:,}" if stats else ""),
        ("length", f"{stats['length']:,}" if stats else ""),
        ("breadth", f"{stats['breadth']:.2%}" if stats else ""),
        ("mean depth", f"{stats['mean_depth']:.2f}" if stats else ""),
        ("identity", f"{stats['identity']:.2f}%" if stats.get("identity") is not None else ""),
        ("files", ", ".join(f["name"] for f in alignment.get("files", []))),
    ]
    for name, value in rows:
        table.add_row(name, value)
    console.print(table)


@alignments.command("list")
@click.option("--sample", "sample_id", default=None, help="Only alignments of this sample.")
@click.pass_context
@fail_on_api_errors
def list_alignments(ctx, sample_id):
    """List alignments, newest first."""
    api = make_client(ctx)
    params = {k: v for k, v in {"sample": sample_id, "per_page": 100}.items() if v}
    table = Table("id", "sample", "accession", "state", "mapped reads", "breadth", "mean depth")
    for doc in api.get("/api/alignments", **params)["documents"]:
        stats = doc.get("statistics") or {}
        table.add_row(
            doc["id"],
            doc["sample"]["$ref"].rsplit("/", 1)[1],
            doc["reference"].get("accession") or "",
            alignment_state(doc),
            f"{stats['mapped_reads']:,}" if stats else "",
            f"{stats['breadth']:.1%}" if stats else "",
            f"{stats['mean_depth']:.1f}" if stats else "",
        )
    console.print(table)


@alignments.command("plot")
@click.argument("alignment_id")
@click.option(
    "--out",
    "out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("coverage.png"),
    show_default=True,
    help="Where to write the plot; a .svg name gets the SVG.",
)
@click.pass_context
@fail_on_api_errors
def plot_alignment(ctx, alignment_id, out: Path):
    """Download the coverage plot and print its path (so `open $(ringspot alignments plot ID)` works)."""
    fmt = "svg" if out.suffix.lower() == ".svg" else "png"
    api = make_client(ctx)
    response = api.session.get(f"{api.url}/api/alignments/{alignment_id}/coverage.{fmt}", timeout=api.timeout)
    if response.status_code >= 400:
        if response.status_code == 404 and not api.get(f"/api/alignments/{alignment_id}")["success"]:
            raise click.ClickException(f"alignment {alignment_id} has no plot: it is not complete or it failed")
        raise ApiError(response)
    out.write_bytes(response.content)
    click.echo(str(out))


# ---------------------------------------------------------------- processes


@click.group()
def processes():
    """Processes (every long-running operation)."""


@processes.command("list")
@click.option("--state", type=click.Choice(["waiting", "running", "complete", "error", "cancelled"]), default=None)
@click.option("--type", "type_", default=None)
@click.pass_context
@fail_on_api_errors
def list_processes(ctx, state, type_):
    """List processes, newest first."""
    api = make_client(ctx)
    params = {k: v for k, v in {"state": state, "type": type_, "per_page": 100}.items() if v}
    table = Table("id", "type", "state", "step", "progress", "error")
    for doc in api.get("/api/processes", **params)["documents"]:
        table.add_row(
            doc["id"],
            doc["type"],
            doc["state"],
            doc.get("step") or "",
            f"{doc['progress']:.0%}",
            doc.get("error") or "",
        )
    console.print(table)


@processes.command("cancel")
@click.argument("process_id")
@click.pass_context
@fail_on_api_errors
def cancel_process(ctx, process_id):
    """Cancel a process (its tools are killed)."""
    api = make_client(ctx)
    print_json(api.delete(f"/api/processes/{process_id}"))


COMMANDS = (login, refs, samples, analyses, alignments, processes)
