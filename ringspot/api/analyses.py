"""``/api/analyses`` and ``/api/samples/:id/analyses``: start, list, read and remove analyses.

The same paths serve the Job API (seed 001): an analysis job reads its own analysis, uploads
its files, finalizes it with ``results`` and may remove it while unfinished.
"""

from typing import Literal

from flask import Blueprint
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ..core import analyses, rights, samples
from ..core.errors import InvalidInput
from ..core.utils import to_json
from ..tasks import analyses as analysis_tasks
from .auth import jobs_allowed, jobs_only
from .context import client, db, settings
from .responses import json_response, no_content, paginated
from .stored import send_stored
from .uploads import incoming_stream
from .validation import Body, PageQuery, Query, _field_errors, body, parse_body, query, takes_file

bp = Blueprint("analyses", __name__)

Workflow = Literal["pathoscope_bowtie", "nuvs"]


class AnalysesQuery(PageQuery):
    sample: str | None = None
    workflow: Workflow | None = None
    ready: bool | None = None


class SampleAnalysesQuery(PageQuery):
    workflow: Workflow | None = None
    ready: bool | None = None


class CreateAnalysisBody(Body):
    workflow: Workflow
    ref_id: str
    #: Subtraction ids; left out, the sample's own subtractions are used.
    subtractions: list[str] | None = None


class BatchAnalysesBody(Body):
    """One analysis per sample, named by id or by label."""

    sample_ids: list[str] | None = Field(default=None, min_length=1, max_length=500)
    label: str | None = Field(default=None, min_length=1, max_length=255)
    workflow: Workflow = "pathoscope_bowtie"
    ref_id: str
    #: Subtraction ids for every sample; left out, each sample's own subtractions are used.
    subtractions: list[str] | None = None

    @model_validator(mode="after")
    def one_selection(self):
        if (self.sample_ids is None) == (self.label is None):
            raise ValueError("give either sample_ids or label")
        return self


class FinalizeBody(Body):
    results: dict


class Results(BaseModel):
    """What the formatters and clients read of a job's results must be there with its type;
    fields beyond them are kept (a workflow may add a note or figures of its own)."""

    model_config = ConfigDict(extra="allow", strict=True)


class HitFigures(Results):
    pi: float
    best: float
    high: float
    low: float
    reads: int


class HitOtu(Results):
    id: str
    version: int | str


class PathoscopeHit(Results):
    id: str
    otu: HitOtu
    final: HitFigures
    initial: HitFigures
    align: list[int]
    coverage: float
    depth: float


class DiagnosisSegments(Results):
    covered: int
    total: int


class DiagnosisIsolate(Results):
    id: str
    source_name: str


class DiagnosisRow(Results):
    id: str
    name: str
    abbreviation: str
    call: Literal["detected", "possible", "not_detected"]
    reasons: list[str]
    pi: float
    reads: int
    breadth: float
    mean_depth: float
    median_depth: float
    segments: DiagnosisSegments
    isolate: DiagnosisIsolate


class PathoscopeResults(Results):
    read_count: int
    subtracted_count: int
    hits: list[PathoscopeHit]
    diagnosis: list[DiagnosisRow] | None = None


class OrfHit(Results):
    hit: str


class Orf(Results):
    index: int
    hits: list[OrfHit]


class Contig(Results):
    index: int
    sequence: str
    orfs: list[Orf]


class NuvsResults(Results):
    hits: list[Contig]


RESULTS_SCHEMAS: dict[str, type[Results]] = {"pathoscope_bowtie": PathoscopeResults, "nuvs": NuvsResults}


def check_results(workflow: str, results: dict) -> None:
    """A 422 naming the first field of ``results`` that does not fit the workflow's schema."""
    try:
        RESULTS_SCHEMAS[workflow].model_validate(results)
    except ValidationError as error:
        errors = {f"results.{field}": messages for field, messages in _field_errors(error).items()}
        field, messages = next(iter(errors.items()))
        raise InvalidInput(f"Invalid input: {field}: {messages[0]}", errors=errors) from None


class AnalysisQuery(Query):
    #: Also list OTUs that drew alignments but kept no read after reassignment.
    all_otus: bool = False


class FileQuery(Query):
    name: str
    format: str | None = None


def serialize_analysis(doc: dict) -> dict:
    return to_json(doc)


def get_readable_analysis(analysis_id: str) -> dict:
    """The analysis if the caller may read it: its own job, or a reader of its sample."""
    analysis = analyses.get_analysis_or_404(db(), analysis_id)
    if client().job is not None:
        rights.require_job_on(client(), "analysis", analysis_id)
    else:
        rights.require_sample_read(client(), analyses.get_parent_sample(db(), analysis))
    return analysis


def get_own_analysis(analysis_id: str) -> dict:
    """Job API writes: only the job running this analysis."""
    analysis = analyses.get_analysis_or_404(db(), analysis_id)
    rights.require_job_on(client(), "analysis", analysis_id)
    return analysis


@bp.get("/api/analyses")
@query(AnalysesQuery)
def find(args: AnalysesQuery):
    """Analyses of the samples the caller may read, newest first, without their results."""
    envelope = analyses.find_analyses(
        db(),
        page=args.page,
        per_page=args.per_page,
        base_query=analyses.visible_query(db(), client()),
        sample_id=args.sample,
        workflow=args.workflow,
        ready=args.ready,
    )
    return paginated(envelope, serialize_analysis)


@bp.get("/api/samples/<sample_id>/analyses")
@query(SampleAnalysesQuery)
def find_for_sample(args: SampleAnalysesQuery, sample_id: str):
    """Analyses of one sample (read right on it)."""
    sample = samples.get_sample_or_404(db(), sample_id)
    rights.require_sample_read(client(), sample)
    envelope = analyses.find_analyses(
        db(), page=args.page, per_page=args.per_page, sample_id=sample_id, workflow=args.workflow, ready=args.ready
    )
    return paginated(envelope, serialize_analysis)


@bp.post("/api/samples/<sample_id>/analyses")
@body(CreateAnalysisBody)
def create(data: CreateAnalysisBody, sample_id: str):
    """Start an analysis of the sample on the reference's latest ready index (write right on the sample,
    read right on the reference)."""
    sample = samples.get_sample_or_404(db(), sample_id)
    rights.require_sample_write(client(), sample)
    rights.require_reference_read(client(), analyses.get_reference_or_400(db(), data.ref_id))
    analysis = analysis_tasks.start_analysis(db(), sample, data.ref_id, data.subtractions, data.workflow, client().user)
    return json_response(
        serialize_analysis(analysis),
        201,
        {
            "Location": f"/api/analyses/{analysis['_id']}",
            "Content-Location": f"/api/processes/{analysis['job']['id']}",
        },
    )


@bp.post("/api/analyses")
@body(BatchAnalysesBody)
def create_batch(data: BatchAnalysesBody):
    """Start one analysis per sample (write right on each, read right on the reference); if any sample
    cannot start (not ready, say), a 400 lists them all and nothing is started."""
    batch = analyses.readable_samples(db(), client(), data.sample_ids, data.label)
    for sample in batch:
        rights.require_sample_write(client(), sample)
    rights.require_reference_read(client(), analyses.get_reference_or_400(db(), data.ref_id))
    analyses.check_batch(db(), batch, data.ref_id, data.subtractions, data.workflow)
    started = [
        analysis_tasks.start_analysis(db(), sample, data.ref_id, data.subtractions, data.workflow, client().user)
        for sample in batch
    ]
    return json_response([serialize_analysis(analysis) for analysis in started], 201)


@bp.get("/api/analyses/<analysis_id>")
@jobs_allowed
@query(AnalysisQuery)
def get(args: AnalysisQuery, analysis_id: str):
    """One analysis; once ready, a Pathoscope analysis has its ``diagnosis`` (OTUs with reads;
    ``all_otus=true`` adds those left with none) and hits grouped by OTU, isolate and sequence."""
    analysis = get_readable_analysis(analysis_id)
    if client().job is not None:  # jobs read the results as they stored them
        return json_response(serialize_analysis(analyses.load_results(settings().data_path, analysis)))
    formatted = analyses.format_analysis(db(), settings().data_path, analysis, all_otus=args.all_otus)
    return json_response(serialize_analysis(formatted))


@bp.patch("/api/analyses/<analysis_id>")
@jobs_only
def finalize(analysis_id: str):
    """Job API: set the results and mark the analysis ready (once); results that do not fit the
    workflow's schema are a 422 naming the field, and nothing is stored."""
    analysis = get_own_analysis(analysis_id)
    data = parse_body(FinalizeBody)
    assert isinstance(data, FinalizeBody)
    analyses.require_unfinalized(analysis)
    check_results(analysis["workflow"], data.results)
    return json_response(serialize_analysis(analyses.finalize(db(), settings().data_path, analysis_id, data.results)))


finalize.openapi = {"body": FinalizeBody}


@bp.delete("/api/analyses/<analysis_id>")
@jobs_allowed
def remove(analysis_id: str):
    """Remove an analysis: users with write right once its job ended, its job while unfinished."""
    if client().job is not None:
        analyses.remove_unfinished(db(), settings().data_path, get_own_analysis(analysis_id))
        return no_content()
    analysis = analyses.get_analysis_or_404(db(), analysis_id)
    rights.require_sample_write(client(), analyses.get_parent_sample(db(), analysis))
    analyses.remove_analysis(db(), settings().data_path, analysis)
    return no_content()


@bp.post("/api/analyses/<analysis_id>/files")
@takes_file
@jobs_only
@query(FileQuery)
def upload(args: FileQuery, analysis_id: str):
    """Job API: store a result file (multipart ``file`` part or raw body); a name sent again replaces it."""
    get_own_analysis(analysis_id)
    entry = analyses.add_file(
        db(), settings().data_path, analysis_id, args.name, incoming_stream(), settings().max_upload_bytes, args.format
    )
    return json_response(entry, 201, {"Location": f"/api/analyses/{analysis_id}/files/{args.name}"})


@bp.get("/api/analyses/<analysis_id>/files/<name>")
@jobs_allowed
def download(analysis_id: str, name: str):
    """Download a result file by name (or numeric id)."""
    analysis = get_readable_analysis(analysis_id)
    entry = analyses.find_file(analysis, name)
    key = analyses.file_key(analysis, entry)
    return send_stored(key, download_name=entry["name"], mimetype="application/octet-stream")
