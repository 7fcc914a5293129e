"""API client commands: ``ringspot refs|samples|analyses|alignments|processes ...`` against any server.

The server is ``--url`` (or ``RINGSPOT_URL``, or the saved config); credentials are
``RINGSPOT_API_KEY`` as ``user:key`` (or ``RINGSPOT_USER`` + ``RINGSPOT_API_KEY``), or
what ``ringspot login`` saved in ``~/.config/ringspot/config.json``.
"""

from __future__ import annotations

import contextlib
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

from ..bio.plots import quality_plot
from .client import ApiError, Client, ProcessFailed
from .sheets import SheetError, SheetRow, read_sheet

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
            raise click.ClickException(str(error)) from None
        except OSError as error:
            raise click.ClickException(f"cannot reach the server: {error}") from None

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


def follow_processes(api: Client, process_ids: list[str], label: str) -> list[dict]:
    """Wait for several processes under one bar that counts the finished ones."""
    columns = (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed:.0f}/{task.total:.0f}"))
    finished = []
    with Progress(*columns, console=Console(stderr=True)) as progress:
        task = progress.add_task(label, total=len(process_ids))
        for process_id in process_ids:
            finished.append(api.wait_process(process_id))
            progress.advance(task)
    return finished


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


MAPPING = click.option(
    "--mapping",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="CSV (accession, otu, isolate, segment) settling what the records' text cannot.",
)


@refs.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--name", default=None, help="Reference name (default: the file name).")
@MAPPING
@click.option("--wait/--no-wait", default=True, help="Wait until the import process ends.")
@click.pass_context
@fail_on_api_errors
def import_reference(ctx, file: Path, name, mapping: Path | None, wait):
    """Import a new reference from a file: reference.json.gz, GenBank or FASTA (plain or gzip)."""
    api = make_client(ctx)
    upload = upload_with_progress(api, file, "reference")
    body = {
        "name": name or file.name.split(".")[0],
        "data_type": "genome",
        "organism": "virus",
        "import_from": upload["id"],
    }
    if mapping is not None:
        body["mapping_from"] = upload_with_progress(api, mapping, "reference")["id"]
    ref = api.post("/api/refs", body)
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
    for ref in api.get_all("/api/refs"):
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
@click.option("--adapter", default=None, help="3' adapter of a small-RNA library (default: detected).")
@click.option("--wait/--no-wait", default=True)
@click.pass_context
@fail_on_api_errors
def upload_sample(ctx, reads: tuple[Path, ...], name, library_type, adapter, wait):
    """Upload one (single-end) or two (paired) FASTQ files and create a sample."""
    if len(reads) > 2:
        raise click.UsageError("give one or two read files")
    api = make_client(ctx)
    uploads = [upload_with_progress(api, path, "reads") for path in reads]
    body = {"name": name, "files": [u["id"] for u in uploads], "library_type": library_type}
    sample = api.post("/api/samples", body | ({"adapter": adapter} if adapter else {}))
    if wait:
        follow_process(api, sample["job"]["id"], "create_sample")
        sample = api.get(f"/api/samples/{sample['id']}")
    quality = sample.get("quality") or {}
    print_json(
        {k: sample.get(k) for k in ("id", "name", "ready", "paired")}
        | {"reads": quality.get("count"), "gc": quality.get("gc")}
    )


#: ``--format table|json``, the same on every command that shows something.
FORMAT = click.option("--format", "output", type=click.Choice(["table", "json"]), default="table")


@samples.command("list")
@click.option("--find", default=None, help="Part of a name, host or isolate.")
@click.option("--label", "labels", multiple=True, help="Only samples with this label (repeatable).")
@FORMAT
@click.pass_context
@fail_on_api_errors
def list_samples(ctx, find, labels, output):
    """List samples."""
    api = make_client(ctx)
    params = {**({"find": find} if find else {}), **({"label": list(labels)} if labels else {})}
    documents = api.get_all("/api/samples", **params)
    if output == "json":
        return print_json(documents)
    table = Table("id", "name", "library", "paired", "ready", "labels", "created")
    for sample in documents:
        table.add_row(
            sample["id"],
            sample["name"],
            sample.get("library_type", ""),
            "yes" if sample.get("paired") else "no",
            "yes" if sample.get("ready") else "no",
            ", ".join(str(label) for label in sample.get("labels") or []),
            str(sample.get("created_at", ""))[:19],
        )
    console.print(table)


@samples.command("get")
@click.argument("sample_id")
@FORMAT
@click.pass_context
@fail_on_api_errors
def get_sample(ctx, sample_id, output):
    """Show one sample."""
    sample = make_client(ctx).get(f"/api/samples/{sample_id}")
    if output == "json":
        return print_json(sample)
    quality = sample.get("quality") or {}
    table = Table("field", "value", show_header=False)
    for field in ("id", "name", "library_type", "paired", "ready", "host", "isolate", "locale"):
        table.add_row(field, str(sample.get(field, "")))
    table.add_row("reads", str(quality.get("count", "")))
    table.add_row("GC %", str(quality.get("gc", "")))
    console.print(table)


@samples.command("quality")
@click.argument("sample_id")
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Write a PNG plot.")
@FORMAT
@click.pass_context
@fail_on_api_errors
def sample_quality(ctx, sample_id, plot, output):
    """Per-cycle read quality of a sample, as a table and optionally a PNG plot."""
    quality = make_client(ctx).get(f"/api/samples/{sample_id}").get("quality")
    if not quality:
        raise click.ClickException(f"sample {sample_id} has no quality yet (is it ready?)")
    if output == "json":
        print_json(quality)
    else:
        table = Table("cycle", "mean", "median", "lower quartile", "upper quartile", "10th pct", "90th pct")
        for number, row in enumerate(quality.get("bases") or [], start=1):
            table.add_row(str(number), *(f"{value:g}" for value in row[:6]))
        console.print(table)
        print_trimming(quality)
    if plot:
        plot.write_bytes(quality_plot(quality.get("bases") or []))
        click.echo(f"wrote {plot}", err=True)


def print_trimming(quality: dict) -> None:
    """What adapter trimming left of a small-RNA sample, and the warnings about its reads."""
    trimming = quality.get("trimming")
    if trimming:
        adapter = trimming["adapter"] or "none found"
        click.echo(
            f"adapter: {adapter} ({trimming['kit'] or 'no kit'}); reads in {trimming['reads_in']}, "
            f"with adapter {trimming['reads_with_adapter']}, under {trimming['min_length']} nt "
            f"{trimming['too_short']}, out {trimming['reads_out']}"
        )
        common = sorted(trimming["lengths"], key=lambda pair: -pair[1])[:5]
        click.echo("commonest lengths after trimming: " + ", ".join(f"{n} nt ({count})" for n, count in common))
    for warning in quality.get("warnings") or []:
        click.echo(f"warning: {warning}")


@samples.command("remove")
@click.argument("sample_id")
@click.pass_context
@fail_on_api_errors
def remove_sample(ctx, sample_id):
    """Remove a sample and its files."""
    make_client(ctx).delete(f"/api/samples/{sample_id}")
    click.echo(f"removed {sample_id}", err=True)


@samples.command("import")
@click.argument("sheet", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--wait/--no-wait", default=True, help="Wait until every sample is ready.")
@click.pass_context
@fail_on_api_errors
def import_samples(ctx, sheet: Path, wait):
    """Create every sample of a CSV sheet; samples whose name exists already are skipped.

    Columns: name, reads_1, reads_2, library_type, host, isolate, locale, labels, subtractions
    (labels and subtractions separated by ';'; paths relative to the sheet). The whole sheet is
    checked before anything is uploaded, so a run stopped half-way is resumed by running it again.
    """
    try:
        rows = read_sheet(sheet)
    except SheetError as error:
        raise click.ClickException(f"{sheet.name} has problems, nothing was uploaded:\n{error}") from None
    api = make_client(ctx)
    _check_subtractions(api, rows)
    existing = {row.name for row in rows if _sample_named(api, row.name)}
    todo = [row for row in rows if row.name not in existing]
    for name in sorted(existing):
        click.echo(f"skipping {name}: a sample of that name exists", err=True)
    created = _upload_rows(api, todo)
    if wait and created:
        follow_processes(api, [sample["job"]["id"] for sample in created], "create_sample")
    print_json([{"id": sample["id"], "name": sample["name"]} for sample in created])


def _check_subtractions(api: Client, rows: list[SheetRow]) -> None:
    problems = []
    for subtraction_id in sorted({s for row in rows for s in row.subtractions}):
        try:
            api.get(f"/api/subtractions/{subtraction_id}")
        except ApiError:
            used = ", ".join(str(row.row) for row in rows if subtraction_id in row.subtractions)
            problems.append(f"row(s) {used}: subtraction {subtraction_id!r} does not exist or is not readable")
    if problems:
        raise click.ClickException("nothing was uploaded:\n" + "\n".join(problems))


def _sample_named(api: Client, name: str) -> bool:
    found = api.get("/api/samples", find=name, per_page=100)["documents"]
    return any(sample["name"] == name for sample in found)


def _upload_rows(api: Client, rows: list[SheetRow]) -> list[dict]:
    """Upload every row's files under one progress bar, creating each sample once its files are in."""
    total = sum(path.stat().st_size for row in rows for path in row.reads)
    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn())
    created = []
    with Progress(*columns, console=Console(stderr=True)) as progress:
        task = progress.add_task("uploading", total=total)
        for row in rows:
            progress.update(task, description=row.name)
            uploads = [api.upload(path, "reads", lambda n: progress.advance(task, n)) for path in row.reads]
            created.append(api.post("/api/samples", row.body([upload["id"] for upload in uploads])))
    return created


# ---------------------------------------------------------------- analyses


@click.group()
def analyses():
    """Analyses."""


@analyses.command("create")
@click.argument("sample_ids", nargs=-1)
@click.option("--label", default=None, help="Analyse every sample with this label.")
@click.option("--ref", "ref_id", required=True, help="Reference id.")
@click.option("--workflow", type=click.Choice(["pathoscope_bowtie", "nuvs"]), default="pathoscope_bowtie")
@click.option(
    "--subtraction", "subtractions", multiple=True, help="Subtraction id (repeatable; default: each sample's own)."
)
@click.pass_context
@fail_on_api_errors
def create_analysis(ctx, sample_ids, label, ref_id, workflow, subtractions):
    """Start an analysis of each sample (ids, or --label) against a reference's latest index; prints their ids.

    A batch starts all or nothing: if a sample cannot start, the error lists it and none is started.
    """
    if bool(sample_ids) == bool(label):
        raise click.UsageError("give sample ids or --label")
    body = {"workflow": workflow, "ref_id": ref_id, "subtractions": list(subtractions) or None}
    selection = {"label": label} if label else {"sample_ids": list(sample_ids)}
    for analysis in make_client(ctx).post("/api/analyses", {**body, **selection}):
        click.echo(analysis["id"])


@analyses.command("await")
@click.argument("analysis_ids", nargs=-1, required=True)
@click.pass_context
@fail_on_api_errors
def await_analysis(ctx, analysis_ids):
    """Wait for analyses, showing progress (one bar for several); exit 1 if one fails."""
    api = make_client(ctx)
    running = [api.get(f"/api/analyses/{analysis_id}") for analysis_id in analysis_ids]
    running = [analysis for analysis in running if not analysis.get("ready")]
    if len(running) == 1:
        follow_process(api, running[0]["job"]["id"], running[0].get("workflow", "analysis"))
    elif running:
        follow_processes(api, [analysis["job"]["id"] for analysis in running], "analyses")
    for analysis_id in analysis_ids:
        click.echo(f"analysis {analysis_id} is ready")


@analyses.command("get")
@click.argument("analysis_id")
@FORMAT
@click.option("--all-otus", is_flag=True, help="Also list OTUs that kept no read after reassignment.")
@click.pass_context
@fail_on_api_errors
def get_analysis(ctx, analysis_id, output, all_otus):
    """Show an analysis: its diagnosis (or NuVs contigs) as a table, or the whole document as JSON."""
    api = make_client(ctx)
    analysis = api.get(f"/api/analyses/{analysis_id}" + ("?all_otus=true" if all_otus else ""))
    if output == "json":
        print_json(analysis)
        return
    if analysis.get("ready") and analysis.get("workflow") == "pathoscope_bowtie" and "diagnosis" in analysis:
        print_diagnosis_table(analysis)
        return
    print_hits_table(analysis)


def print_diagnosis_table(analysis: dict) -> None:
    """One row per OTU: the call first, then the evidence it rests on and the reasons."""
    table = Table(
        "OTU",
        "call",
        "reads",
        "breadth",
        "mean depth",
        "median depth",
        "segments",
        "pi",
        "isolate",
        "reasons",
        title=f"Pathoscope {analysis['id']}: diagnosis ({analysis.get('read_count')} reads aligned)",
    )
    for row in analysis["diagnosis"]:
        name = row["name"] + (f" ({row['abbreviation']})" if row.get("abbreviation") else "")
        table.add_row(
            name,
            row["call"],
            str(row["reads"]),
            f"{row['breadth'] * 100:.1f} %",
            f"{row['mean_depth']:.2f}",
            f"{row['median_depth']:g}",
            f"{row['segments']['covered']}/{row['segments']['total']}",
            f"{row['pi']:.4f}",
            row["isolate"]["source_name"],
            "; ".join(row["reasons"]),
        )
    console.print(table)


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
        with contextlib.suppress(ProcessFailed):  # the alignment says why
            follow_process(api, job_id_of(alignment), "alignment")
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
@FORMAT
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


def step_marks(doc: dict) -> list[str]:
    """A mark per step: done, the one running (or where it stopped), or still to come."""
    names = [step["name"] for step in doc.get("steps") or []]
    if doc.get("state") == "complete":
        return ["done"] * len(names)
    current = names.index(doc["step"]) if doc.get("step") in names and doc.get("state") != "waiting" else -1
    at = {"running": "running", "error": "failed", "cancelled": "cancelled"}.get(doc.get("state", ""), "")
    return ["done" if n < current else at if n == current else "" for n in range(len(names))]


def print_steps(doc: dict) -> None:
    """The process's steps in order with what each does, marked as far as it got."""
    table = Table("", "#", "step", "description")
    for number, (step, mark) in enumerate(zip(doc.get("steps") or [], step_marks(doc), strict=True), start=1):
        table.add_row(mark, str(number), step["name"], step["description"])
    console.print(table)


@processes.command("show")
@click.argument("process_id")
@click.pass_context
@fail_on_api_errors
def show_process(ctx, process_id):
    """Show a process: its state and progress, then its steps and what each does."""
    doc = make_client(ctx).get(f"/api/processes/{process_id}")
    progress = f"{doc['progress']:.0%}"
    click.echo(f"{doc['id']}  {doc['type']}  {doc['state']}  {progress}  step {doc.get('step') or '-'}")
    if doc.get("error"):
        click.echo(f"error: {doc['error']}")
    print_steps(doc)


@processes.command("cancel")
@click.argument("process_id")
@click.pass_context
@fail_on_api_errors
def cancel_process(ctx, process_id):
    """Cancel a process (its tools are killed)."""
    api = make_client(ctx)
    print_json(api.delete(f"/api/processes/{process_id}"))


COMMANDS = (login, refs, samples, analyses, alignments, processes)
