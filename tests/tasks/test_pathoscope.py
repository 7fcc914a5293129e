"""pathoscope_bowtie end to end: an HTTP request starts the job, a real worker runs bowtie2 through
the Job API only, and the finalized results are checked against the same computation done the
plain way here (bowtie2 writing SAM files, parsed after the fact), a recount of depths, and
figures of the real samples: Raspberry ringspot virus in the RpRSV sample, GLRaV-1 in the
125-read grapevine smoke sample."""

from __future__ import annotations

import gzip
import logging
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from ringspot.bio import reference as reference_format
from ringspot.bio.diagnosis import Thresholds
from ringspot.bio.pathoscope import (
    eliminate_subtraction,
    read_sam,
    read_subtraction_scores,
    run_pathoscope,
)
from ringspot.core.analyses import load_results
from ringspot.core.settings import from_env
from ringspot.tasks import analyses  # noqa: F401  (binds the actor to the stub broker)
from ringspot.tasks.cache import cached

from ..analyses_data import (
    GLRAV1_READS,
    HOST,
    RPRSV_READS,
    SMALL_REFERENCE,
    build_index_files,
    build_subtraction_files,
    insert_index,
    insert_otus,
    insert_reference,
    insert_sample,
    insert_subtraction,
    load_otus,
    repeated_reads,
)
from ..conftest import wait_for
from ..mate_names import write_pair

MAPPING = ["--local", "--score-min", "L,20,1.0", "-N", "0", "-L", "15"]
#: RpRSV RNA1 of isolate 13C209 (MZ220963.1) and RNA2 (MZ220964.1): where the EM puts the reads.
RNA1, RNA2 = "1v8px8al", "1ajsxktz"
#: The default isolate's RNA1 (NC_005266) and RNA2 (NC_005267): what the first mapping finds.
NC_005266, NC_005267 = "o6g9f7oq", "lmi0scai"
RPRSV = "9fe2f60d"


@pytest.fixture(scope="module")
def subtraction_files(tmp_path_factory, plant):
    """Bowtie2 indexes of the tiny host FASTA and of 1.5 kb of RpRSV RNA1 posing as a host."""
    root = tmp_path_factory.mktemp("subtractions")
    rna1 = next(s["sequence"] for o in plant["otus"] for i in o["isolates"] for s in i["sequences"] if s["_id"] == RNA1)
    (root / "rna1.fa").write_text(f">rna1_fragment\n{rna1[2000:3500]}\n")
    return {
        "host": build_subtraction_files(HOST, root / "host"),
        "rna1": build_subtraction_files(root / "rna1.fa", root / "rna1"),
    }


@pytest.fixture
def world(db, settings, admin, plant, live_server, stub_worker):
    reference = insert_reference(db)
    index = insert_index(db, settings.data_path, reference["_id"], plant["otus"], plant["files"])
    return {"reference": reference, "index": index}


def run_analysis(admin, db, sample_id: str, ref_id: str, subtractions: list[str], timeout: float = 90) -> dict:
    """Run the job to completion; the analysis document with its results (kept in the file store)."""
    response = admin.post(
        f"/api/samples/{sample_id}/analyses",
        json={"workflow": "pathoscope_bowtie", "ref_id": ref_id, "subtractions": subtractions},
    )
    assert response.status_code == 201, response.json

    def finished():
        job = db.processes.find_one({"_id": response.json["job"]["id"]})
        return job if job["state"] in ("complete", "error", "cancelled") else None

    job = wait_for(finished, timeout=timeout, message="pathoscope_bowtie")
    assert job["state"] == "complete", job["error"]
    assert job["step"] == "reassignment" and job["progress"] == 1
    stored = db.analyses.find_one({"_id": response.json["id"]})
    assert stored["results"] == "file"  # the document itself stays small
    return load_results(from_env().data_path, stored)


def bowtie2(*args) -> None:
    subprocess.run(["bowtie2", "-p", "2", *map(str, args)], check=True, capture_output=True)


def plain_pathoscope(
    work: Path, reads: list[Path], otus: list[dict], index_prefix: Path, subtraction_prefixes: list[Path]
) -> tuple[dict, dict]:
    """workflows.md section 1 the plain way: SAM files on disk, parsed once bowtie2 is done.

    Mates are renamed x/1 and x/2 first, by the tests' own writer, as the job names them.
    """
    work.mkdir()
    if len(reads) == 2:
        reads = write_pair((reads[0], reads[1]), work, "slash")
    joined = ",".join(map(str, reads))
    bowtie2(
        "--local",
        "--no-unal",
        "--no-hd",
        "--no-sq",
        "--score-min",
        "L,20,1.0",
        "-N",
        "0",
        "-L",
        "15",
        "-x",
        index_prefix,
        "-U",
        joined,
        "-S",
        work / "default.sam",
    )
    with open(work / "default.sam") as sam:
        candidates = {line.split("\t")[2] for line in sam}
    sequence_otu_map = {s["_id"]: o["_id"] for o in otus for i in o["isolates"] for s in i["sequences"]}
    otu_ids = {sequence_otu_map[ref] for ref in candidates}
    records = list(reference_format.iter_all_isolate_fasta(otus, otu_ids))
    with open(work / "isolates.fa", "w") as handle:
        reference_format.write_fasta(records, handle)
    subprocess.run(
        ["bowtie2-build", str(work / "isolates.fa"), str(work / "isolates")], check=True, capture_output=True
    )
    bowtie2(
        "--no-hd",
        "--no-sq",
        "--no-unal",
        *MAPPING,
        "-k",
        "100",
        "--al",
        work / "aligned.fq",
        "-x",
        work / "isolates",
        "-U",
        joined,
        "-S",
        work / "isolates.sam",
    )
    with open(work / "isolates.sam") as handle:
        alignments = list(read_sam(handle))
    subtracted_count, fastq = 0, work / "aligned.fq"
    for number, prefix in enumerate(subtraction_prefixes):
        bowtie2(
            "--local",
            "--no-unal",
            "--no-hd",
            "--no-sq",
            "-N",
            "0",
            "-x",
            prefix,
            "-U",
            fastq,
            "-S",
            work / f"sub{number}.sam",
        )
        with open(work / f"sub{number}.sam") as handle:
            scores = read_subtraction_scores(handle)
        kept, subtracted = eliminate_subtraction(alignments, scores)
        alignments = list(kept)
        subtracted_count += len(subtracted)
        lines = fastq.read_text().splitlines(keepends=True)
        rest = work / f"rest{number}.fq"
        with open(rest, "w") as out:
            for i in range(0, len(lines), 4):
                if lines[i][1:].split()[0] not in subtracted:
                    out.writelines(lines[i : i + 4])
        fastq = rest
    lengths = {sequence_id: len(sequence) for sequence_id, sequence in records}
    manifest = {o["_id"]: 0 for o in otus}
    results = run_pathoscope(alignments, lengths, sequence_otu_map, manifest, work / "out")
    results["subtracted_count"] = subtracted_count
    return results, {"candidates": candidates, "alignments": alignments, "fastq": fastq}


def assert_same_results(actual: dict, expected: dict) -> None:
    """Equal up to the order bowtie2's two threads write lines in (sums may differ in the last bits)."""
    assert (actual["read_count"], actual["subtracted_count"]) == (expected["read_count"], expected["subtracted_count"])
    assert [h["id"] for h in actual["hits"]] == [h["id"] for h in expected["hits"]]
    for got, want in zip(actual["hits"], expected["hits"], strict=False):
        assert got["otu"] == want["otu"]
        assert (got["align"], got["coverage"], got["depth"]) == (want["align"], want["coverage"], want["depth"])
        for stage in ("initial", "final"):
            for key in ("pi", "best", "high", "low"):
                assert got[stage][key] == pytest.approx(want[stage][key], rel=1e-9, abs=1e-12)
            # int() of a sum of 1/n shares: a last-bit difference may move it by one read.
            assert abs(got[stage]["reads"] - want[stage]["reads"]) <= 1


def recount(alignments, ref_id: str, length: int, unique_only: bool = False) -> np.ndarray:
    """Depth from SAM spans (pos .. pos + len(SEQ)), all alignments or those of single-reference reads."""
    refs_of: dict[str, set] = {}
    for read_id, ref, *_ in alignments:
        refs_of.setdefault(read_id, set()).add(ref)
    depth, seen = np.zeros(length + 1000, dtype=np.int64), set()
    for read_id, ref, pos, seq_length, _ in alignments:
        if ref != ref_id or (unique_only and (len(refs_of[read_id]) > 1 or read_id in seen)):
            continue
        seen.add(read_id)
        depth[pos - 1 : pos - 1 + seq_length] += 1
    return depth[:length]


def fastq_names(data: bytes) -> list[str]:
    return [line[1:].split()[0] for line in data.decode().splitlines()[::4]]


def test_rprsv_sample_finds_raspberry_ringspot_virus(
    admin, db, settings, world, plant, subtraction_files, tmp_path, caplog
):
    caplog.set_level(logging.INFO, logger="ringspot.tasks.analyses")
    sample = insert_sample(db, settings.data_path, RPRSV_READS)
    analysis = run_analysis(admin, db, sample["_id"], world["reference"]["_id"], [])
    results = analysis["results"]
    expected, plain = plain_pathoscope(tmp_path / "plain", RPRSV_READS, plant["otus"], plant["files"] / "reference", [])

    # Every figure is what the plain computation gives.
    assert_same_results(results, expected)
    assert results["read_count"] == 9834 and results["subtracted_count"] == 0
    # The first mapping finds RpRSV through its default isolate (NC_005266, NC_005267) ...
    assert {NC_005266, NC_005267} <= plain["candidates"]
    isolate_index = next(Path(settings.data_path, "cache", "isolates").iterdir())
    names = subprocess.run(
        ["bowtie2-inspect", "-n", str(isolate_index / "isolates")], capture_output=True, text=True, check=True
    ).stdout.split()
    assert {NC_005266, NC_005267, RNA1, RNA2} <= set(names)
    # ... and the EM gives RNA1 and RNA2 of isolate 13C209 nearly all of the reads.
    hits = {h["id"]: h for h in results["hits"]}
    assert [h["id"] for h in results["hits"][:2]] == [RNA1, RNA2]
    rna1, rna2 = hits[RNA1], hits[RNA2]
    assert rna1["otu"] == rna2["otu"] == {"id": RPRSV, "version": 0}
    assert rna1["final"]["pi"] == pytest.approx(0.7096, abs=1e-4) and rna2["final"]["pi"] == pytest.approx(
        0.2904, abs=1e-4
    )
    assert abs(rna1["final"]["reads"] - 7083) <= 1 and abs(rna2["final"]["reads"] - 2741) <= 1
    assert (rna1["coverage"], rna1["depth"], len(rna1["align"])) == (0.999, 120, 7915)
    assert (rna2["coverage"], rna2["depth"], len(rna2["align"])) == (1.0, 108, 3900)
    assert all(h["final"]["pi"] < 0.001 for h in results["hits"][2:])
    # Depths recounted from the SAM: between the single-reference reads and every alignment.
    for hit in (rna1, rna2):
        align = np.array(hit["align"])
        assert (recount(plain["alignments"], hit["id"], len(align), unique_only=True) <= align).all()
        assert (align <= recount(plain["alignments"], hit["id"], len(align))).all()
        assert hit["coverage"] == round(1 - int((align == 0).sum()) / len(align), 3)
        assert hit["depth"] == round(int(align.sum()) / len(align))

    # report.tsv and the aligned reads are the analysis's files.
    files = {f["name"]: f for f in analysis["files"]}
    assert set(files) == {"report.tsv", "isolate_mapped.fq.gz"}
    report = admin.get(f"/api/analyses/{analysis['_id']}/files/report.tsv").data.decode()
    assert report.splitlines()[0] == "Total Number of Aligned Reads:\t9834\tTotal Number of Mapped Genomes:\t" + str(
        len({a[1] for a in plain["alignments"]})
    )
    assert [row.split("\t")[0] for row in report.splitlines()[2:]] == [h["id"] for h in results["hits"]]
    reads = gzip.decompress(admin.get(f"/api/analyses/{analysis['_id']}/files/isolate_mapped.fq.gz").data)
    assert sorted(fastq_names(reads)) == sorted(fastq_names(plain["fastq"].read_bytes()))
    assert len(fastq_names(reads)) == 9834

    # The user sees RpRSV as one OTU with RNA1 and RNA2 of isolate 13C209.
    insert_otus(
        db,
        world["reference"]["_id"],
        [o for o in plant["otus"] if o["_id"] in {h["otu"]["id"] for h in results["hits"]}],
    )
    shown = admin.get(f"/api/analyses/{analysis['_id']}").json
    top = shown["results"]["hits"][0]
    assert (top["id"], top["name"]) == (RPRSV, "Raspberry ringspot virus")
    # Reads are those assigned to the OTU (the few reads the EM gives other OTUs are not its own),
    # as the diagnosis counts them, not pi x read_count.
    assert top["pi"] == pytest.approx(1.0, abs=1e-3) and top["reads"] == 9826
    assert shown["diagnosis"][0]["id"] == RPRSV and shown["diagnosis"][0]["reads"] == 9826
    isolate = top["isolates"][0]
    assert isolate["source_name"] == "13c209"
    sequences = sorted(isolate["sequences"], key=lambda s: s["accession"])
    assert [(s["accession"], s["reads"]) for s in sequences] == [
        ("MZ220963.1", rna1["final"]["reads"]),
        ("MZ220964.1", rna2["final"]["reads"]),
    ]
    assert "RNA1" in sequences[0]["definition"] and "RNA2" in sequences[1]["definition"]

    # A second analysis, now with RpRSV RNA1 posing as a host, reuses the isolate index.
    built = (isolate_index / "isolates.1.bt2").stat().st_mtime_ns
    rna1_host = insert_subtraction(db, settings.data_path, subtraction_files["rna1"], name="RNA1 host")
    second = run_analysis(admin, db, sample["_id"], world["reference"]["_id"], [rna1_host["_id"]])
    assert (isolate_index / "isolates.1.bt2").stat().st_mtime_ns == built
    assert len(list(Path(settings.data_path, "cache", "isolates").iterdir())) == 1
    events = [r.getMessage().split()[0] for r in caplog.records if r.name == "ringspot.tasks.analyses"]
    assert events.count("isolate_index_built") == 1 and events.count("isolate_index_reused") == 1
    assert [e for e in events if e.startswith("index_ready")] == ["index_ready", "index_ready"]
    assert any("cached=True" in r.getMessage() for r in caplog.records if r.getMessage().startswith("index_ready"))

    expected, plain = plain_pathoscope(
        tmp_path / "plain-subtracted",
        RPRSV_READS,
        plant["otus"],
        plant["files"] / "reference",
        [subtraction_files["rna1"] / "subtraction"],
    )
    assert_same_results(second["results"], expected)
    assert second["results"]["subtracted_count"] > 500
    assert second["results"]["read_count"] < 9834 - 500
    reads = gzip.decompress(admin.get(f"/api/analyses/{second['_id']}/files/isolate_mapped.fq.gz").data)
    assert sorted(fastq_names(reads)) == sorted(fastq_names(plain["fastq"].read_bytes()))
    assert len(fastq_names(reads)) == 9834 - second["results"]["subtracted_count"]
    assert second["subtractions"] == [{"id": rna1_host["_id"], "name": "RNA1 host"}]


def test_glrav1_smoke_sample(admin, db, settings, world, plant, subtraction_files, tmp_path):
    host = insert_subtraction(db, settings.data_path, subtraction_files["host"])
    sample = insert_sample(db, settings.data_path, GLRAV1_READS, subtractions=[host["_id"]])
    analysis = run_analysis(admin, db, sample["_id"], world["reference"]["_id"], [host["_id"]])
    expected, _ = plain_pathoscope(
        tmp_path / "plain",
        GLRAV1_READS,
        plant["otus"],
        plant["files"] / "reference",
        [subtraction_files["host"] / "subtraction"],
    )
    assert_same_results(analysis["results"], expected)
    results = analysis["results"]
    assert results["subtracted_count"] == 0 and results["read_count"] >= 2
    names = {o["_id"]: o["name"] for o in plant["otus"]}
    top = results["hits"][0]
    assert names[top["otu"]["id"]] == "Grapevine leafroll-associated virus 1"
    assert top["final"]["reads"] >= 2 and 0 < top["coverage"] < 0.1


def test_a_sample_where_nothing_maps_gets_empty_results(admin, db, settings, live_server, stub_worker, tmp_path):
    otus = load_otus(SMALL_REFERENCE)[:3]  # no grapevine virus among them
    reference = insert_reference(db, "Small")
    insert_index(db, settings.data_path, reference["_id"], otus, build_index_files(otus, tmp_path / "small"))
    sample = insert_sample(db, settings.data_path, GLRAV1_READS)
    analysis = run_analysis(admin, db, sample["_id"], reference["_id"], [])
    assert analysis["results"] == {
        "read_count": 0,
        "subtracted_count": 0,
        "hits": [],
        "thresholds": Thresholds().as_dict(),
    }
    assert analysis["diagnosis"] == []
    report = admin.get(f"/api/analyses/{analysis['_id']}/files/report.tsv").data.decode()
    assert report.startswith("Total Number of Aligned Reads:\t0\tTotal Number of Mapped Genomes:\t0\r\n")
    assert gzip.decompress(admin.get(f"/api/analyses/{analysis['_id']}/files/isolate_mapped.fq.gz").data) == b""
    assert not Path(settings.data_path, "cache", "isolates").exists()  # no bowtie2-build of nothing


def test_broken_reads_fail_the_job_and_the_analysis_stays_failed(admin, db, settings, world, tmp_path):
    broken = tmp_path / "broken.fq.gz"
    broken.write_bytes(gzip.compress(b"@r1\nACGT\n+\nII\n"))  # quality shorter than the sequence
    sample = insert_sample(db, settings.data_path, [broken])
    response = admin.post(
        f"/api/samples/{sample['_id']}/analyses",
        json={"workflow": "pathoscope_bowtie", "ref_id": world["reference"]["_id"]},
    )
    assert response.status_code == 201

    def finished():
        job = db.processes.find_one({"_id": response.json["job"]["id"]})
        return job if job["state"] in ("complete", "error", "cancelled") else None

    job = wait_for(finished, timeout=60, message="failed job")
    assert job["state"] == "error" and "bowtie2" in job["error"]
    # The analysis stays, failed with the job's error, within the same Job API call.
    failed = wait_for(lambda: db.analyses.find_one({"_id": response.json["id"], "failed": True}), message="failed")
    assert failed["error"] == job["error"] and failed["ready"] is False
    assert not Path(settings.data_path, "analyses", response.json["id"]).exists()
    assert not any(Path(settings.data_path, "work").iterdir())


def test_cancelling_a_running_analysis_kills_bowtie2_and_removes_it(admin, db, settings, world, make_user, tmp_path):
    # Enough reads that the first mapping is still running when the cancel arrives.
    sample = insert_sample(db, settings.data_path, repeated_reads(tmp_path, 40, RPRSV_READS[:1]))
    response = admin.post(
        f"/api/samples/{sample['_id']}/analyses",
        json={"workflow": "pathoscope_bowtie", "ref_id": world["reference"]["_id"]},
    )
    job_id = response.json["job"]["id"]
    wait_for(
        lambda: db.processes.find_one({"_id": job_id, "step": "map_default_isolates"}),
        timeout=60,
        message="mapping started",
    )
    canceller = make_user("canceller", permissions=["cancel_job"])
    cancelled_at = time.monotonic()
    assert canceller.put(f"/api/jobs/{job_id}/cancel").status_code == 200
    wait_for(
        lambda: subprocess.run(["pgrep", "-f", f"work/{job_id}/"], capture_output=True).returncode == 1,
        timeout=5,
        interval=0.1,
        message="bowtie2 to die",
    )
    assert time.monotonic() - cancelled_at < 5
    job = wait_for(
        lambda: db.processes.find_one({"_id": job_id, "state": {"$in": ["cancelled", "error", "complete"]}}),
        timeout=30,
        message="cancelled",
    )
    assert job["state"] == "cancelled"
    wait_for(lambda: db.analyses.find_one({"_id": response.json["id"]}) is None, timeout=10, message="clean-up")
    assert subprocess.run(["pgrep", "-f", f"work/{job_id}/"], capture_output=True).returncode == 1


def test_cache_entries_appear_whole_once_however_many_runs_race(tmp_path):
    calls = []

    def fill(folder: Path) -> None:
        calls.append(folder)
        (folder / "part1").write_text("a")
        time.sleep(0.2)
        (folder / "part2").write_text("b")

    with ThreadPoolExecutor(4) as pool:
        outcomes = list(pool.map(lambda _: cached(tmp_path, "key", fill), range(4)))
    assert {path for path, _ in outcomes} == {tmp_path / "key"}
    assert sorted(p.name for p in (tmp_path / "key").iterdir()) == ["part1", "part2"]
    assert [p.name for p in tmp_path.iterdir()] == ["key"]  # no scratch folder left behind
    assert cached(tmp_path, "key", fill) == (tmp_path / "key", True) and len(calls) == 4

    def broken(folder: Path) -> None:
        (folder / "half").write_text("x")
        raise RuntimeError("download failed")

    with pytest.raises(RuntimeError):
        cached(tmp_path, "other", broken)
    assert [p.name for p in tmp_path.iterdir()] == ["key"]
