"""BLAST of NuVs contigs: the NCBI URL-API pieces as pure functions, and local BLAST+.

Spec ``workflows.md`` section 4 and ``virtool-api.md`` section 6.3. The NCBI functions build
requests and read replies; sending them (and pacing the polls with ``next_interval``) is the
caller's job, so everything here is testable on recorded replies. ``blastn_local`` answers in
the same shape as ``format_blast_content`` so a local search can stand in for NCBI.
"""

from __future__ import annotations

import io
import json
import os
import re
import tempfile
import threading
import zipfile
from pathlib import Path

from ringspot.bio import runner

BLAST_URL = "https://blast.ncbi.nlm.nih.gov/Blast.cgi"

#: Seconds before the first status check, added after each not-ready check, and the cap.
INITIAL_INTERVAL = 3
INTERVAL_STEP = 5
MAX_INTERVAL = 75

_QBLAST_INFO = re.compile(r"QBlastInfoBegin(.*?)QBlastInfoEnd", re.DOTALL)
_RID = re.compile(r"RID = (.+)")
_RTOE = re.compile(r"RTOE = (.+)")
_STATUS = re.compile(r"Status=(\w+)")
_NUCLEOTIDES = re.compile(r"[ACGTURYSWKMBDHVN]+", re.IGNORECASE)
_LOCAL_ORDINAL_ID = "gnl|BL_ORD_ID|"


def put_params(sequence: str) -> tuple[dict[str, str], dict[str, str]]:
    """Query parameters and form body of the ``CMD=Put`` request submitting ``sequence``.

    >>> params, body = put_params("ACGTN")
    >>> params["CMD"], params["PROGRAM"], params["MEGABLAST"], body
    ('Put', 'blastn', 'on', {'QUERY': 'ACGTN'})
    """
    if not _NUCLEOTIDES.fullmatch(sequence):
        raise ValueError("the query must be a non-empty nucleotide sequence (IUPAC letters only)")
    params = {
        "CMD": "Put",
        "DATABASE": "nr",
        "PROGRAM": "blastn",
        "MEGABLAST": "on",
        "HITLIST_SIZE": "5",
        "FILTER": "mL",
        "FORMAT_TYPE": "JSON2",
    }
    # The sequence goes in the body: a contig of several kb would overflow a URL.
    return params, {"QUERY": sequence}


def check_params(rid: str) -> dict[str, str]:
    """Query parameters of the status check for ``rid`` (answered by ``is_ready``)."""
    return {"CMD": "Get", "RID": rid, "FORMAT_OBJECT": "SearchInfo"}


def result_params(rid: str) -> dict[str, str]:
    """Query parameters fetching the zipped JSON result of ``rid`` (read by ``read_result_zip``)."""
    return {"CMD": "Get", "RID": rid, "FORMAT_TYPE": "JSON2", "FORMAT_OBJECT": "Alignment"}


def parse_put_reply(html: str) -> tuple[str, int | None]:
    """The request id and estimated seconds to completion (RTOE) from NCBI's reply to a Put.

    >>> parse_put_reply("<!--QBlastInfoBegin\\n    RID = YA40WNN5014\\n    RTOE = 19\\nQBlastInfoEnd\\n-->")
    ('YA40WNN5014', 19)
    >>> parse_put_reply("<html>Error</html>")
    Traceback (most recent call last):
    ...
    ValueError: NCBI reply has no QBlastInfo block: the search was not accepted
    """
    for block in _QBLAST_INFO.findall(html):
        rid = _RID.search(block)
        if rid:
            rtoe = _RTOE.search(block)
            try:
                seconds = int(rtoe.group(1).strip()) if rtoe else None
            except ValueError:
                seconds = None  # only an estimate; Virtool ignores it altogether
            return rid.group(1).strip(), seconds
    if _QBLAST_INFO.search(html):
        raise ValueError("NCBI reply has a QBlastInfo block without RID")
    raise ValueError("NCBI reply has no QBlastInfo block: the search was not accepted")


def is_ready(search_info_html: str) -> bool:
    """True once a status check no longer says ``Status=WAITING``; ValueError if NCBI gave up.

    >>> is_ready("QBlastInfoBegin\\n Status=WAITING\\nQBlastInfoEnd"), is_ready("Status=READY")
    (False, True)
    >>> is_ready("Status=UNKNOWN")
    Traceback (most recent call last):
    ...
    ValueError: NCBI reports the search as UNKNOWN (expired or never submitted)
    """
    statuses = set(_STATUS.findall(search_info_html))
    if "FAILED" in statuses:
        raise ValueError("NCBI reports the search as FAILED")
    if "UNKNOWN" in statuses:
        raise ValueError("NCBI reports the search as UNKNOWN (expired or never submitted)")
    return "WAITING" not in statuses


def read_result_zip(data: bytes, rid: str) -> dict:
    """The JSON report ``{rid}_1.json`` inside the zip NCBI returns for a result request."""
    member = f"{rid}_1.json"
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return json.loads(archive.read(member))
    except (zipfile.BadZipFile, KeyError, ValueError) as error:
        # NCBI answers an expired or bad RID with an HTML page instead of a zip.
        raise ValueError(f"Unable to interpret NCBI result ({member}: {error})") from None


def format_blast_content(content: dict) -> dict:
    """The compact result stored for a contig: ``{program, params, version, target, stat,
    masking, hits}``, each hit from the first description and first HSP.

    Accepts NCBI's ``BlastOutput2`` object and BLAST+'s ``-outfmt 15`` list of one report.

    >>> hit = {"description": [{"accession": "AB1", "title": "t", "taxid": 12}], "len": 900,
    ...        "hsps": [{"identity": 300, "evalue": 0, "align_len": 300, "score": 300,
    ...                  "bit_score": 555.1, "gaps": 0}]}
    >>> report = {"program": "blastn", "params": {}, "version": "2", "search_target": {"db": "nr"},
    ...           "results": {"search": {"hits": [hit], "stat": {}}}}
    >>> formatted = format_blast_content({"BlastOutput2": {"report": report}})
    >>> formatted["hits"][0]["accession"], formatted["hits"][0]["name"], formatted["masking"]
    ('AB1', 'No name', None)
    """
    if len(content) != 1 or "BlastOutput2" not in content:
        raise ValueError(f"expected one BlastOutput2 result, found keys {sorted(content)}")
    output = content["BlastOutput2"]
    if isinstance(output, list):
        if len(output) != 1:
            raise ValueError(f"expected one BLAST report, found {len(output)}")
        output = output[0]
    try:
        report = output["report"]
        search = report["results"]["search"]
        return {
            "program": report["program"],
            "params": report["params"],
            "version": report["version"],
            "target": report["search_target"],
            "hits": [_format_hit(hit) for hit in search.get("hits", [])],
            "stat": search["stat"],
            "masking": search.get("query_masking"),
        }
    except (KeyError, IndexError, TypeError) as error:
        raise ValueError(f"BLAST report lacks {error}") from None


def _format_hit(hit: dict) -> dict:
    description = hit["description"][0]
    hsp = hit["hsps"][0]  # the best HSP; the UI shows one line per subject
    return {
        "accession": description.get("accession", ""),
        "taxid": description.get("taxid", ""),
        "title": description.get("title", ""),
        "name": description.get("sciname") or "No name",
        "len": hit["len"],
        **{key: hsp[key] for key in ("identity", "evalue", "align_len", "score", "bit_score", "gaps")},
    }


def next_interval(interval: int | None = None) -> int:
    """Seconds to wait before the next status check: 3 first, then 5 more each time, at most 75.

    >>> [next_interval(None), next_interval(3), next_interval(73), next_interval(75)]
    [3, 8, 75, 75]
    """
    if interval is None:
        return INITIAL_INTERVAL
    return min(interval + INTERVAL_STEP, MAX_INTERVAL)


def make_blast_db(
    fasta_path: str | os.PathLike,
    db_prefix: str | os.PathLike,
    *,
    timeout: float | None = None,
    cancel: threading.Event | None = None,
) -> None:
    """Build a nucleotide BLAST database ``db_prefix.*`` from a FASTA file.

    Without ``-parse_seqids``: that option rejects ids longer than 50 characters, duplicates
    and odd deflines, and ``blastn_local`` recovers each subject's id from its title anyway.
    """
    argv = ["makeblastdb", "-in", os.fspath(fasta_path), "-dbtype", "nucl", "-out", os.fspath(db_prefix)]
    runner.run(argv, timeout=timeout, cancel=cancel)


def blastn_local(
    query_seq: str,
    db_prefix: str | os.PathLike,
    *,
    max_hits: int = 5,
    evalue: float = 10.0,
    threads: int = 1,
    timeout: float | None = None,
    cancel: threading.Event | None = None,
) -> dict:
    """Megablast ``query_seq`` against a local database; the result as ``format_blast_content``.

    Searches like the NCBI submission (megablast, 5 hits, low-complexity filter and masking).
    Subjects of a database made by ``make_blast_db`` have no accession, so each hit's
    ``accession`` is the first word of its FASTA header and ``title`` the rest.
    """
    put_params(query_seq)  # same check of the query as for NCBI
    with tempfile.TemporaryDirectory(prefix="ringspot-blastn-") as work:
        query = Path(work, "query.fa")
        query.write_text(f">query\n{query_seq}\n")
        report = Path(work, "report.json")
        argv = [
            "blastn",
            "-task", "megablast",
            "-query", query,
            "-db", os.fspath(db_prefix),
            "-outfmt", "15",
            "-max_target_seqs", str(max_hits),
            "-evalue", str(evalue),
            "-num_threads", str(threads),
            "-out", report,
        ]  # fmt: skip
        runner.run([str(arg) for arg in argv], timeout=timeout, cancel=cancel)
        with open(report) as handle:
            content = json.load(handle)
    _name_local_subjects(content)
    return format_blast_content(content)


def _name_local_subjects(content: dict) -> None:
    """Give subjects known only by ordinal (no ``-parse_seqids``) their FASTA id as accession."""
    for output in content.get("BlastOutput2", []):
        for hit in output.get("report", {}).get("results", {}).get("search", {}).get("hits", []):
            for description in hit.get("description", []):
                if description.get("id", "").startswith(_LOCAL_ORDINAL_ID):
                    accession, _, title = description.get("title", "").partition(" ")
                    description["accession"], description["title"] = accession, title
