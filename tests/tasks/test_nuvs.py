"""NuVs end to end on the real RpRSV sample, through a real worker, the live Job API and the
analyses API: the reads that the 20-OTU reference and the host explain are dropped, SPAdes
assembles the rest, and the contigs of Raspberry ringspot virus (absent from that reference)
come back with their ORFs, searched against the installed vFam profiles (hmm7)."""

from __future__ import annotations

import gzip
import io
import json
import subprocess
import time
from pathlib import Path

import pytest

from ringspot.bio import orfs as bio_orfs
from ringspot.core import hmms
from ringspot.tasks import analyses as analysis_tasks  # noqa: F401  (binds actors to the stub broker first)
from ringspot.tasks import nuvs as nuvs_tasks

from ..analyses_data import (
    HOST,
    PLANT_REFERENCE,
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
)
from ..common import wait_finished
from ..conftest import DATA, wait_for
from .test_install_hmms import install_hmm7

RPRSV_RNA1, RPRSV_RNA2 = "NC_005266", "NC_005267"


@pytest.fixture
def world(db, settings, tmp_path, admin, stub_broker, stub_worker, live_server):
    """A 20-OTU reference without RpRSV, indexed; a host subtraction; the RpRSV sample."""
    otus = load_otus(SMALL_REFERENCE)
    assert not any("ringspot" in otu["name"] and "Raspberry" in otu["name"] for otu in otus)
    reference = insert_reference(db, "Small", public=True)
    insert_otus(db, reference["_id"], otus)
    index = insert_index(db, settings.data_path, reference["_id"], otus, build_index_files(otus, tmp_path / "index"))
    subtraction = insert_subtraction(db, settings.data_path, build_subtraction_files(HOST, tmp_path / "host"))
    sample = insert_sample(db, settings.data_path, RPRSV_READS, user_id="admin", subtractions=[subtraction["_id"]])
    return {"reference": reference, "index": index, "subtraction": subtraction, "sample": sample}


def start_nuvs(admin, world):
    return admin.post(
        f"/api/samples/{world['sample']['_id']}/analyses",
        json={"workflow": "nuvs", "ref_id": world["reference"]["_id"]},
    )


def rprsv_blast_db(folder: Path) -> Path:
    """A BLAST database of RpRSV RNA1 and RNA2 (the default isolate of the plant-virus reference)."""
    with gzip.open(PLANT_REFERENCE, "rt") as handle:
        otus = json.load(handle)["otus"]
    sequences = [
        s for otu in otus for i in otu["isolates"] for s in i["sequences"] if s["accession"] in (RPRSV_RNA1, RPRSV_RNA2)
    ]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "rprsv.fa").write_text("".join(f">{s['accession']}\n{s['sequence']}\n" for s in sequences))
    subprocess.run(
        ["makeblastdb", "-in", str(folder / "rprsv.fa"), "-dbtype", "nucl", "-out", str(folder / "rprsv")],
        check=True,
        capture_output=True,
    )
    return folder / "rprsv"


def best_rprsv_alignments(contigs: list[dict], database: Path, folder: Path) -> dict[int, tuple[str, int, int, float]]:
    """contig index -> (subject, subject start, subject end, identity) of its best RpRSV alignment."""
    query = folder / "contigs.fa"
    query.write_text("".join(f">{c['index']}\n{c['sequence']}\n" for c in contigs))
    out = subprocess.run(
        [
            "blastn",
            "-query",
            str(query),
            "-db",
            str(database),
            "-evalue",
            "1e-20",
            "-outfmt",
            "6 qseqid sseqid sstart send pident bitscore",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    best: dict[int, tuple] = {}
    for line in out.splitlines():
        qseqid, sseqid, sstart, send, pident, bitscore = line.split("\t")
        if int(qseqid) not in best or float(bitscore) > best[int(qseqid)][4]:
            best[int(qseqid)] = (
                sseqid,
                min(int(sstart), int(send)),
                max(int(sstart), int(send)),
                float(pident),
                float(bitscore),
            )
    return {k: v[:4] for k, v in best.items()}


def covered(spans: list[tuple[int, int]], length: int) -> float:
    marks = bytearray(length + 1)
    for start, end in spans:
        marks[start : end + 1] = b"\x01" * (end + 1 - start)
    return sum(marks) / length


def test_nuvs_assembles_rprsv_contigs_with_orfs_from_real_reads(admin, db, settings, world, tmp_path):
    # No profiles, no NuVs.
    refused = start_nuvs(admin, world)
    assert (refused.status_code, refused.json["message"]) == (400, "HMM profiles are not installed")
    assert install_hmm7(admin, db)["state"] == "complete"
    installed = hmms.installed_set(db)

    created = start_nuvs(admin, world)
    assert created.status_code == 201, created.json
    job = wait_finished(db, created.json["job"]["id"], timeout=300)
    assert job["state"] == "complete", job["error"]
    assert [entry["state"] for entry in job["status"]][-1] == "complete"
    assert (job["step"], job["progress"]) == ("finalize", 1)
    assert job["steps"] == nuvs_tasks.NUVS.steps
    assert job["steps"][1]["name"] == "trim_reads" and all(step["description"] for step in job["steps"])

    analysis = admin.get(f"/api/analyses/{created.json['id']}").json
    assert analysis["ready"] is True and analysis["workflow"] == "nuvs"
    contigs = analysis["results"]["hits"]
    assert len(contigs) >= 5

    # Contigs: over 300 bp, indexed by place, each with ORFs found by the rules of workflows.md 2.6.
    assert [c["index"] for c in contigs] == list(range(len(contigs)))
    for contig in contigs:
        sequence = contig["sequence"]
        assert len(sequence) > 300 and contig["orfs"]
        assert [o["index"] for o in contig["orfs"]] == list(range(len(contig["orfs"])))
        for orf in contig["orfs"]:
            assert set(orf) == {"index", "frame", "strand", "pos", "pro", "hits"}
            start, end = orf["pos"]
            coding = sequence[start:end] if orf["strand"] == 1 else bio_orfs.reverse_complement(sequence[start:end])
            assert bio_orfs.translate(coding).startswith(orf["pro"]) and len(orf["pro"]) >= 100
            assert orf["frame"] in (0, 1, 2) and orf["strand"] in (1, -1)

    # Raspberry ringspot virus: contigs cover most of both genome segments, and carry its
    # polyprotein ORFs (RNA1 ~2,100 aa, RNA2 ~1,100 aa).
    database = rprsv_blast_db(tmp_path / "blastdb")
    best = best_rprsv_alignments(contigs, database, tmp_path)
    rna1 = [(s, e) for subject, s, e, _ in best.values() if subject == RPRSV_RNA1]
    rna2 = [(s, e) for subject, s, e, _ in best.values() if subject == RPRSV_RNA2]
    assert covered(rna1, 7935) > 0.9 and covered(rna2, 3914) > 0.8
    assert all(identity > 80 for *_, identity in best.values())
    longest: dict[str, int] = {}
    for index, (subject, *_) in best.items():
        longest[subject] = max(longest.get(subject, 0), *(len(o["pro"]) for o in contigs[index]["orfs"]))
    assert longest[RPRSV_RNA1] > 1500 and longest[RPRSV_RNA2] > 900

    # HMM hits: every hit names an annotation of the installed set and keeps HMMER's columns.
    annotation_ids = {d["_id"] for d in db.hmm.find({"set.id": installed["id"]}, {"_id": 1})}
    hits = [hit for contig in contigs for orf in contig["orfs"] for hit in orf["hits"]]
    assert all(hit["hit"] in annotation_ids for hit in hits)
    assert all(
        set(hit) == {"hit", "full_e", "full_score", "full_bias", "best_e", "best_score", "best_bias"} for hit in hits
    )

    # Files: the whole assembly, every ORF searched, and hmmscan's table.
    files = {f["name"]: f for f in analysis["files"]}
    assert set(files) == {"assembly.fa.gz", "orfs.fa.gz", "hmm.tsv"}
    assembly = admin.get(f"/api/analyses/{analysis['id']}/files/assembly.fa.gz").data
    scaffolds = list(bio_orfs.read_fasta(io.StringIO(gzip.decompress(assembly).decode())))
    assert len(scaffolds) > len(contigs) and {s for _, s in scaffolds} >= {c["sequence"] for c in contigs}
    assert all(title.startswith("NODE_") for title, _ in scaffolds)
    orf_records = list(
        bio_orfs.read_fasta(
            io.StringIO(gzip.decompress(admin.get(f"/api/analyses/{analysis['id']}/files/orfs.fa.gz").data).decode())
        )
    )
    assert [title for title, _ in orf_records] == [
        f"sequence_{c['index']}.{o['index']}" for c in contigs for o in c["orfs"]
    ]
    table = admin.get(f"/api/analyses/{analysis['id']}/files/hmm.tsv").data.decode()
    assert "# Program:         hmmscan" in table
    assert len([line for line in table.splitlines() if line.startswith("vFam")]) == len(hits)

    # The profiles were pressed once on this worker, under the set's content hash.
    cache = Path(settings.data_path) / "cache" / "hmms" / installed["sha256"]
    assert (cache / "profiles.hmm.h3m").exists()
    print(
        f"\nNuVs RpRSV: {len(contigs)} contigs, {sum(len(c['orfs']) for c in contigs)} ORFs, "
        f"{len(hits)} HMM hits against hmm7, RpRSV contigs {sorted(best)}"
    )


def test_cancel_during_assembly_kills_spades_and_leaves_no_analysis(admin, db, settings, world):
    assert install_hmm7(admin, db)["state"] == "complete"
    created = start_nuvs(admin, world).json
    job_id = created["job"]["id"]
    wait_for(
        lambda: (db.processes.find_one({"_id": job_id}) or {}).get("step") == "assemble",
        timeout=120,
        message="the assemble step",
    )
    work = Path(settings.data_path) / "work" / job_id
    wait_for(lambda: (work / "spades").exists(), timeout=30, message="SPAdes to start")
    cancelled_at = time.monotonic()
    assert admin.delete(f"/api/processes/{job_id}").status_code == 202
    wait_for(
        lambda: subprocess.run(["pgrep", "-f", str(work)], capture_output=True).stdout == b"",
        timeout=5,
        interval=0.1,
        message="SPAdes to die",
    )
    assert time.monotonic() - cancelled_at < 5
    job = wait_finished(db, job_id)
    assert job["state"] == "cancelled"
    assert admin.get(f"/api/analyses/{created['id']}").status_code == 404
    assert not work.exists()


def test_vfam_step_attaches_hits_with_scores_in_their_own_columns(tmp_path):
    """The vfam step on the two recorded ORFs that hit hmm7 (vFam_9 and vFam_2)."""
    profiles = tmp_path / "profiles.hmm"
    profiles.write_bytes(gzip.decompress((DATA / "hmm" / "hmm7" / "profiles.hmm.gz").read_bytes()))
    from ringspot.bio import hmmer

    hmmer.hmmpress(profiles)
    with open(DATA / "nuvs" / "vfam_input_orfs.fa") as handle:
        records = list(bio_orfs.read_fasta(handle))
    contigs = [
        {
            "index": int(title.split("_")[1].split(".")[0]),
            "sequence": "",
            "orfs": [{"index": 0, "frame": 0, "strand": 1, "pos": [0, 3 * len(pro)], "pro": pro, "hits": []}],
        }
        for title, pro in records
    ]
    orfs_fasta = tmp_path / "orfs.fa"
    with open(orfs_fasta, "w") as handle:
        bio_orfs.write_orfs_fasta(contigs, handle)
    hit_ids = {cluster: f"id{cluster}" for cluster in (2, 3, 4, 5, 8, 9, 10)}
    nuvs_tasks.find_hits(contigs, profiles, orfs_fasta, tmp_path / "hmm.tsv", hit_ids, cpu=1)
    first = contigs[0]["orfs"][0]["hits"][0]
    assert (first["hit"], first["full_e"], first["full_score"], first["full_bias"]) == ("id9", 3.9e-135, 440.7, 4.5)
    assert (first["best_e"], first["best_score"], first["best_bias"]) == (5e-135, 440.3, 4.5)
    assert contigs[1]["orfs"][0]["hits"][0]["hit"] == "id2"

    # With an E-value cut-off only hits at or under it stay.
    for contig in contigs:
        contig["orfs"][0]["hits"] = []
    nuvs_tasks.find_hits(contigs, profiles, orfs_fasta, tmp_path / "hmm.tsv", hit_ids, cpu=1, cutoff=1e-130)
    assert [len(c["orfs"][0]["hits"]) for c in contigs] == [1, 0]


def test_nuvs_completes_with_a_note_when_almost_every_read_is_a_reference_hit(
    admin, db, settings, tmp_path, stub_broker, stub_worker, live_server
):
    """The RpRSV reads that align to RpRSV, and 131 that do not: elimination leaves SPAdes too little."""
    rprsv = [otu for otu in load_otus() if otu["name"] == "Raspberry ringspot virus"]
    reference = insert_reference(db, "RpRSV", public=True)
    insert_otus(db, reference["_id"], rprsv)
    files = build_index_files(rprsv, tmp_path / "index")
    insert_index(db, settings.data_path, reference["_id"], rprsv, files)
    hits, others = tmp_path / "hits.fq", tmp_path / "others.fq"
    subprocess.run(
        ["bowtie2", "-p", "2", "--very-fast-local", "-x", files / "reference", "-U", ",".join(map(str, RPRSV_READS))]
        + ["--al", hits, "--un", others, "-S", "/dev/null"],
        check=True,
        capture_output=True,
    )
    reads = tmp_path / "reads.fq.gz"
    other_lines = others.read_text().splitlines(keepends=True)[: 4 * 131]
    reads.write_bytes(gzip.compress((hits.read_text() + "".join(other_lines)).encode()))
    hit_count = len(hits.read_text().splitlines()) // 4
    assert hit_count > 10 * 131  # almost every read is a reference hit
    sample = insert_sample(db, settings.data_path, [reads], user_id="admin")
    assert install_hmm7(admin, db)["state"] == "complete"

    body = {"workflow": "nuvs", "ref_id": reference["_id"]}
    created = admin.post(f"/api/samples/{sample['_id']}/analyses", json=body)
    assert created.status_code == 201, created.json
    job = wait_finished(db, created.json["job"]["id"], timeout=300)
    assert job["state"] == "complete", job["error"]
    assert (job["step"], job["progress"]) == ("finalize", 1)
    analysis = admin.get(f"/api/analyses/{created.json['id']}").json
    assert analysis["ready"] is True and analysis["results"]["hits"] == []
    assert analysis["results"]["note"] in (
        "too few reads for SPAdes to estimate k-mer coverage (SPAdes: Invalid kmer coverage histogram)",
        "SPAdes built no scaffold from the reads left",
    )
    assembly = admin.get(f"/api/analyses/{analysis['id']}/files/assembly.fa.gz").data
    assert gzip.decompress(assembly) == b""


def test_a_failing_tool_fails_the_analysis_once_and_it_stays_readable(admin, db, settings, world, monkeypatch):
    """SPAdes refusing its memory limit fails the same way every time: no retry, and the lab sees why."""
    monkeypatch.setenv("RINGSPOT_MEM_GB", "0")
    assert install_hmm7(admin, db)["state"] == "complete"
    created = start_nuvs(admin, world).json
    job = wait_finished(db, created["job"]["id"], timeout=300)
    assert job["state"] == "error" and job["step"] == "assemble"
    assert job["error"].startswith("spades.py exited with code")
    time.sleep(2)  # a retry would have been sent at once
    job = db.processes.find_one({"_id": created["job"]["id"]})
    assert job["state"] == "error" and job.get("attempts", 1) == 1

    failed = wait_for(lambda: (doc := admin.get(f"/api/analyses/{created['id']}").json).get("failed") and doc)
    assert failed["ready"] is False and failed["error"] == job["error"]
    assert admin.get(f"/api/samples/{world['sample']['_id']}").json["workflows"]["nuvs"] == "none"
    assert admin.delete(f"/api/analyses/{created['id']}").status_code == 204
    assert admin.get(f"/api/analyses/{created['id']}").status_code == 404
