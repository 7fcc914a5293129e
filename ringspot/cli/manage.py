"""The rest of the command line, one shape for every resource: ``list``, ``get``, ``create``,
``remove``, ``--format table|json``, a progress display on every wait.

References (create, otus add and import from GenBank/FASTA, export), analyses (list, cancel, export, blast),
subtractions, HMM profiles, jobs, users and API keys.
"""

from __future__ import annotations

from pathlib import Path

import click
from rich.table import Table

from ..bio.records import RecordError, group_records, read_records
from .client import Client
from .remote import (
    FORMAT,
    MAPPING,
    analyses,
    console,
    fail_on_api_errors,
    follow_process,
    make_client,
    print_json,
    print_steps,
    refs,
    upload_with_progress,
)

FILE = click.Path(exists=True, dir_okay=False, path_type=Path)


def print_table(rows: list[dict], columns: dict[str, str], title: str | None = None) -> None:
    """A table of ``rows`` showing ``columns`` (field -> heading)."""
    table = Table(*columns.values(), title=title)
    for row in rows:
        table.add_row(*("" if row.get(field) is None else str(row.get(field)) for field in columns))
    console.print(table)


def show(documents: list[dict] | dict, output: str, columns: dict[str, str]) -> None:
    if output == "json":
        print_json(documents)
    else:
        print_table(documents if isinstance(documents, list) else [documents], columns)


# ---------------------------------------------------------------- references


@refs.command("create")
@click.option("--name", required=True)
@click.option("--organism", default="virus")
@click.option("--description", default="")
@click.pass_context
@fail_on_api_errors
def create_reference(ctx, name, organism, description):
    """Create an empty reference; prints it as JSON."""
    print_json(make_client(ctx).post("/api/refs", {"name": name, "organism": organism, "description": description}))


@refs.command("export")
@click.argument("ref_id")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True, help="reference.json.gz")
@click.pass_context
@fail_on_api_errors
def export_reference(ctx, ref_id, out: Path):
    """Write a reference as reference.json.gz."""
    make_client(ctx).download(f"/api/refs/{ref_id}/export", out)
    click.echo(f"wrote {out}", err=True)


@refs.command("remove")
@click.argument("ref_id")
@click.pass_context
@fail_on_api_errors
def remove_reference(ctx, ref_id):
    """Remove a reference (a process removes its OTUs)."""
    make_client(ctx).delete(f"/api/refs/{ref_id}")
    click.echo(f"removing {ref_id}", err=True)


@refs.group("otus")
def otus():
    """OTUs of a reference."""


@otus.command("list")
@click.argument("ref_id")
@click.option("--find", default=None)
@FORMAT
@click.pass_context
@fail_on_api_errors
def list_otus(ctx, ref_id, find, output):
    """List a reference's OTUs."""
    params = {"find": find} if find else {}
    documents = make_client(ctx).get_all(f"/api/refs/{ref_id}/otus", **params)
    show(documents, output, {"id": "id", "name": "name", "abbreviation": "abbreviation", "version": "version"})


@otus.command("add")
@click.argument("ref_id")
@click.argument("file", type=FILE)
@click.pass_context
@fail_on_api_errors
def add_otus(ctx, ref_id, file: Path):
    """Add the records of a GenBank or FASTA file: each organism to its OTU (made if missing),
    each isolate or strain as an isolate, each record as a sequence."""
    try:
        with open(file, "rb") as handle:
            grouped = group_records(read_records(handle, file.name))
    except RecordError as error:
        raise click.ClickException(str(error)) from None
    api = make_client(ctx)
    added = []
    for otu in grouped:
        otu_id = _otu_id(api, ref_id, otu)
        for isolate in otu["isolates"]:
            body = {"source_type": isolate["source_type"], "source_name": isolate["source_name"]}
            isolate_id = api.post(f"/api/otus/{otu_id}/isolates", body)["id"]
            for sequence in isolate["sequences"]:
                fields = ("accession", "definition", "host", "segment", "sequence")
                api.post(f"/api/otus/{otu_id}/isolates/{isolate_id}/sequences", {k: sequence[k] for k in fields})
                added.append(
                    {"otu": otu["name"], "isolate": isolate["source_name"], "accession": sequence["accession"]}
                )
    print_json(added)


@otus.command("import")
@click.argument("ref_id")
@click.argument("file", type=FILE)
@MAPPING
@click.option("--wait/--no-wait", default=True, help="Wait until the import process ends.")
@click.pass_context
@fail_on_api_errors
def import_otus(ctx, ref_id, file: Path, mapping: Path | None, wait):
    """Add the records of a GenBank or FASTA file on the server, all or none: each organism to its
    OTU (made if missing), each isolate or strain as a new isolate; prints the process as JSON."""
    api = make_client(ctx)
    body = {"upload_id": upload_with_progress(api, file, "reference")["id"]}
    if mapping is not None:
        body["mapping_upload_id"] = upload_with_progress(api, mapping, "reference")["id"]
    process = api.post(f"/api/refs/{ref_id}/otus/import", body)
    if wait:
        process = follow_process(api, process["id"], "import_records")
    print_json(process)


def _otu_id(api: Client, ref_id: str, otu: dict) -> str:
    """The id of the reference's OTU of this name, created (with its segments) when missing."""
    for existing in api.get(f"/api/refs/{ref_id}/otus", find=otu["name"], per_page=100)["documents"]:
        if existing["name"].casefold() == otu["name"].casefold():
            return existing["id"]
    body = {"name": otu["name"], "abbreviation": "", "schema": otu["schema"]}
    return api.post(f"/api/refs/{ref_id}/otus", body)["id"]


# ---------------------------------------------------------------- analyses


ANALYSIS_COLUMNS = {"id": "id", "workflow": "workflow", "ready": "ready", "created_at": "created"}
EXPORTS = {"csv": "diagnosis.csv", "xlsx": "diagnosis.xlsx", "contigs": "contigs.fa", "orfs": "orfs.faa"}


@analyses.command("list")
@click.option("--sample", default=None, help="Only this sample's analyses.")
@FORMAT
@click.pass_context
@fail_on_api_errors
def list_analyses(ctx, sample, output):
    """List analyses, newest first."""
    documents = make_client(ctx).get_all("/api/analyses", **({"sample": sample} if sample else {}))
    for document in documents:
        document["sample_name"] = (document.get("sample") or {}).get("name")
    show(documents, output, {**ANALYSIS_COLUMNS, "sample_name": "sample"})


@analyses.command("cancel")
@click.argument("analysis_id")
@click.pass_context
@fail_on_api_errors
def cancel_analysis(ctx, analysis_id):
    """Cancel a running analysis (its tools are killed)."""
    api = make_client(ctx)
    analysis = api.get(f"/api/analyses/{analysis_id}")
    if analysis.get("ready"):
        raise click.ClickException(f"analysis {analysis_id} has finished; remove it with `analyses remove`")
    api.delete(f"/api/processes/{analysis['job']['id']}")
    click.echo(f"cancelled {analysis_id}", err=True)


@analyses.command("remove")
@click.argument("analysis_id")
@click.pass_context
@fail_on_api_errors
def remove_analysis(ctx, analysis_id):
    """Remove an analysis and its files."""
    make_client(ctx).delete(f"/api/analyses/{analysis_id}")
    click.echo(f"removed {analysis_id}", err=True)


@analyses.command("export")
@click.argument("analysis_id")
@click.option("--what", type=click.Choice(list(EXPORTS)), default="csv")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None)
@click.pass_context
@fail_on_api_errors
def export_analysis(ctx, analysis_id, what, out: Path | None):
    """Write the diagnosis (csv, xlsx) or NuVs contigs and ORFs (FASTA) to a file."""
    out = out or Path(f"{analysis_id}-{EXPORTS[what]}")
    make_client(ctx).download(f"/api/analyses/{analysis_id}/{EXPORTS[what]}", out)
    click.echo(f"wrote {out}", err=True)


@analyses.command("report")
@click.option("--ref", "ref_id", required=True)
@click.option("--label", default=None, help="Samples with this label.")
@click.option("--sample", "sample_ids", multiple=True, help="Sample id (repeatable).")
@click.option("--format", "fmt", type=click.Choice(["csv", "xlsx", "svg", "png", "json"]), default="csv")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.pass_context
@fail_on_api_errors
def report(ctx, ref_id, label, sample_ids, fmt, out: Path):
    """Virus x sample calls over many samples: a table (csv, xlsx, json) or a heatmap (svg, png)."""
    if bool(label) == bool(sample_ids):
        raise click.UsageError("give --label or --sample (repeatable)")
    params = {"ref_id": ref_id, "format": fmt, **({"label": label} if label else {"sample_ids": ",".join(sample_ids)})}
    make_client(ctx).download("/api/reports/diagnosis", out, **params)
    click.echo(f"wrote {out}", err=True)


@analyses.command("blast")
@click.argument("analysis_id")
@click.argument("contig", type=int)
@FORMAT
@click.pass_context
@fail_on_api_errors
def blast_contig(ctx, analysis_id, contig, output):
    """BLAST one NuVs contig (by its index) with the server's back end, then show the hits."""
    api = make_client(ctx)
    record = api.request("PUT", f"/api/analyses/{analysis_id}/{contig}/blast", json={})
    backend = record.get("backend", "ncbi")
    if backend == "local":
        click.echo("BLAST runs locally against the installed references (the server's back end is 'local')", err=True)
    follow_process(api, record["process"]["id"], f"blast ({backend})")
    analysis = api.get(f"/api/analyses/{analysis_id}")
    hit = next(h for h in analysis["results"]["hits"] if h["index"] == contig)
    result = (hit.get("blast") or {}).get("result") or {}
    if output == "json":
        return print_json(hit.get("blast"))
    print_table(
        result.get("hits") or [], {"accession": "accession", "name": "name", "evalue": "e-value", "score": "score"}
    )


# ---------------------------------------------------------------- subtractions


SUBTRACTION_COLUMNS = {"id": "id", "name": "name", "nickname": "nickname", "ready": "ready", "count": "sequences"}


@click.group()
def subtractions():
    """Host genomes whose reads are removed before analysis."""


@subtractions.command("list")
@FORMAT
@click.pass_context
@fail_on_api_errors
def list_subtractions(ctx, output):
    """List subtractions."""
    show(make_client(ctx).get_all("/api/subtractions"), output, SUBTRACTION_COLUMNS)


@subtractions.command("get")
@click.argument("subtraction_id")
@FORMAT
@click.pass_context
@fail_on_api_errors
def get_subtraction(ctx, subtraction_id, output):
    """Show one subtraction."""
    show(make_client(ctx).get(f"/api/subtractions/{subtraction_id}"), output, SUBTRACTION_COLUMNS)


@subtractions.command("create")
@click.argument("fasta", type=FILE)
@click.option("--name", required=True)
@click.option("--nickname", default="")
@click.option("--wait/--no-wait", default=True)
@click.pass_context
@fail_on_api_errors
def create_subtraction(ctx, fasta: Path, name, nickname, wait):
    """Upload a host genome FASTA and build its subtraction."""
    api = make_client(ctx)
    upload = upload_with_progress(api, fasta, "subtraction")
    subtraction = api.post("/api/subtractions", {"name": name, "nickname": nickname, "upload_id": upload["id"]})
    if wait:
        follow_process(api, subtraction["job"]["id"], "create_subtraction")
        subtraction = api.get(f"/api/subtractions/{subtraction['id']}")
    print_json(subtraction)


@subtractions.command("remove")
@click.argument("subtraction_id")
@click.pass_context
@fail_on_api_errors
def remove_subtraction(ctx, subtraction_id):
    """Remove a subtraction."""
    make_client(ctx).delete(f"/api/subtractions/{subtraction_id}")
    click.echo(f"removed {subtraction_id}", err=True)


# ---------------------------------------------------------------- HMM profiles


@click.group()
def hmms():
    """HMM profiles that annotate NuVs ORFs."""


@hmms.command("status")
@FORMAT
@click.pass_context
@fail_on_api_errors
def hmm_status(ctx, output):
    """The installed profile set and any install in progress."""
    status = make_client(ctx).get("/api/hmms/status")
    show(status, output, {"installed": "installed", "task": "install", "updates": "sets installed"})


@hmms.command("install")
@click.argument("profiles", type=FILE)
@click.argument("annotations", type=FILE)
@click.option("--wait/--no-wait", default=True)
@click.pass_context
@fail_on_api_errors
def install_hmms(ctx, profiles: Path, annotations: Path, wait):
    """Install a profile set from a HMMER3 profiles file and its annotations JSON (plain or gzip)."""
    api = make_client(ctx)
    profile_upload = upload_with_progress(api, profiles, "hmm")
    annotation_upload = upload_with_progress(api, annotations, "hmm")
    body = {"upload_id": profile_upload["id"], "annotations_upload_id": annotation_upload["id"]}
    process = api.post("/api/hmms/status/updates", body)
    if wait:
        follow_process(api, process["id"], "install_hmms")
    print_json(api.get("/api/hmms/status"))


# ---------------------------------------------------------------- jobs


JOB_COLUMNS = {"id": "id", "workflow": "workflow", "state": "state", "step": "step", "progress": "progress"}


@click.group()
def jobs():
    """Jobs: the workflows that run on worker pools."""


@jobs.command("list")
@click.option("--state", default=None)
@FORMAT
@click.pass_context
@fail_on_api_errors
def list_jobs(ctx, state, output):
    """List jobs, newest first."""
    show(make_client(ctx).get_all("/api/jobs", **({"state": state} if state else {})), output, JOB_COLUMNS)


@jobs.command("get")
@click.argument("job_id")
@FORMAT
@click.pass_context
@fail_on_api_errors
def get_job(ctx, job_id, output):
    """Show one job, then its steps and what each does."""
    job = make_client(ctx).get(f"/api/jobs/{job_id}")
    show(job, output, {**JOB_COLUMNS, "error": "error"})
    if output != "json":
        print_steps(job)


@jobs.command("cancel")
@click.argument("job_id")
@click.pass_context
@fail_on_api_errors
def cancel_job(ctx, job_id):
    """Cancel a job; its tools are killed."""
    make_client(ctx).request("PUT", f"/api/jobs/{job_id}/cancel", json={})
    click.echo(f"cancelled {job_id}", err=True)


# ---------------------------------------------------------------- users and keys


USER_COLUMNS = {"id": "id", "handle": "handle", "administrator": "administrator", "force_reset": "force reset"}


@click.group()
def users():
    """Users (administrators only)."""


@users.command("list")
@FORMAT
@click.pass_context
@fail_on_api_errors
def list_users(ctx, output):
    """List users."""
    show(make_client(ctx).get_all("/api/users"), output, USER_COLUMNS)


@users.command("create")
@click.argument("user_id")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
@click.option("--force-reset/--no-force-reset", default=True, help="Ask for a new password at first sign-in.")
@click.pass_context
@fail_on_api_errors
def create_user(ctx, user_id, password, force_reset):
    """Create a user."""
    print_json(
        make_client(ctx).post("/api/users", {"user_id": user_id, "password": password, "force_reset": force_reset})
    )


@users.command("remove")
@click.argument("user_id")
@click.pass_context
@fail_on_api_errors
def remove_user(ctx, user_id):
    """Remove a user."""
    make_client(ctx).delete(f"/api/users/{user_id}")
    click.echo(f"removed {user_id}", err=True)


@click.group()
def keys():
    """Your API keys."""


@keys.command("list")
@FORMAT
@click.pass_context
@fail_on_api_errors
def list_keys(ctx, output):
    """List your API keys (never their secrets)."""
    show(make_client(ctx).get("/api/account/keys"), output, {"id": "id", "name": "name", "created_at": "created"})


@keys.command("create")
@click.argument("name")
@click.pass_context
@fail_on_api_errors
def create_key(ctx, name):
    """Create an API key; its secret is printed once."""
    click.echo(make_client(ctx).create_key(name))


@keys.command("remove")
@click.argument("key_id")
@click.pass_context
@fail_on_api_errors
def remove_key(ctx, key_id):
    """Remove one of your API keys."""
    make_client(ctx).delete(f"/api/account/keys/{key_id}")
    click.echo(f"removed {key_id}", err=True)


COMMANDS = (subtractions, hmms, jobs, users, keys)
