"""Test data for analyses: samples, references, indexes and subtractions put straight into the
database and file store, the way their own jobs leave them, so analysis tests need not run
those jobs first. Indexes and subtractions hold real Bowtie2 files from ``bowtie2-build``."""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
from pathlib import Path

from ringspot.bio import reference as reference_format
from ringspot.core.utils import new_id, now

#: ``../shared/data`` (also read by ``bench/bench_pathoscope.py``, hence no conftest import here).
DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

PLANT_REFERENCE = DATA / "reference" / "ref-plant-viruses-v1.5.0.reference.json.gz"
RPRSV_READS = [
    DATA / "samples" / "rprsv-paired-nextseq" / "paired_1.fq.gz",
    DATA / "samples" / "rprsv-paired-nextseq" / "paired_2.fq.gz",
]
GLRAV1_READS = [DATA / "samples" / "glrav1-grapevine-125reads.fq.gz"]
HOST = DATA / "subtraction" / "host.fa"
SMALL_REFERENCE = DATA / "reference" / "example-20otus.reference.json.gz"
BOWTIE2_SUFFIXES = ("1", "2", "3", "4", "rev.1", "rev.2")


def repeated_reads(folder: Path, copies: int, sources: list[Path] = RPRSV_READS) -> list[Path]:
    """``sources`` (mate files) ``copies`` times over in ``folder``, each copy's read names made
    unique: a real sample large enough that its tools are still running when a test acts."""
    paths = []
    for source in sources:
        lines = gzip.decompress(source.read_bytes()).rstrip(b"\n").split(b"\n")
        names = [header.split()[0] for header in lines[0::4]]
        path = folder / source.name
        with gzip.open(path, "wb", compresslevel=1) as handle:
            for copy in range(copies):
                lines[0::4] = [b"%s_%d" % (name, copy) for name in names]
                handle.write(b"\n".join(lines) + b"\n")
        paths.append(path)
    return paths


def insert_sample(
    db,
    data_path: str,
    reads: list[Path],
    *,
    user_id: str = "admin",
    ready: bool = True,
    subtractions: list[str] | None = None,
    **rights,
) -> dict:
    """A sample as create_sample leaves it: reads_N.fq.gz in the store and a ready document."""
    sample_id = new_id()
    folder = Path(data_path) / "samples" / sample_id
    folder.mkdir(parents=True)
    entries = []
    for number, path in enumerate(reads, 1):
        name = f"reads_{number}.fq.gz"
        shutil.copyfile(path, folder / name)
        entries.append({"name": name, "size": path.stat().st_size, "uploaded_at": now()})
    doc = {
        "_id": sample_id,
        "name": f"sample {sample_id}",
        "host": "",
        "isolate": "",
        "locale": "",
        "notes": "",
        "library_type": "normal",
        "format": "fastq",
        "paired": len(reads) == 2,
        "files": [],
        "reads": entries,
        "quality": None,
        "subtractions": subtractions or [],
        "labels": [],
        "group": "none",
        "group_read": True,
        "group_write": False,
        "all_read": True,
        "all_write": False,
        **rights,
        "user": {"id": user_id},
        "created_at": now(),
        "ready": ready,
        "job": {"id": new_id()},
    }
    db.samples.insert_one(doc)
    return doc


def insert_reference(db, name: str = "Plant viruses", **fields) -> dict:
    doc = {
        "_id": new_id(),
        "name": name,
        "description": "",
        "data_type": "genome",
        "organism": "virus",
        "created_at": now(),
        "user": {"id": "admin"},
        "users": [],
        "groups": [],
        "public": False,
        "internal_control": None,
        "restrict_source_types": False,
        "source_types": ["isolate", "strain"],
        **fields,
    }
    db.refs.insert_one(doc)
    return doc


def insert_otus(db, ref_id: str, otus: list[dict], version: int = 0) -> None:
    """OTUs of a reference file as the database keeps them: isolates embedded, sequences apart."""
    otu_docs, sequence_docs = [], []
    for otu in otus:
        otu_docs.append(
            {
                "_id": otu["_id"],
                "name": otu["name"],
                "lower_name": otu["name"].lower(),
                "abbreviation": otu.get("abbreviation", ""),
                "reference": {"id": ref_id},
                "version": version,
                "last_indexed_version": version,
                "verified": True,
                "issues": None,
                "imported": True,
                "schema": otu.get("schema", []),
                "taxid": otu.get("taxid"),
                "created_at": now(),
                "user": {"id": "admin"},
                "isolates": [{k: v for k, v in isolate.items() if k != "sequences"} for isolate in otu["isolates"]],
            }
        )
        for isolate in otu["isolates"]:
            for sequence in isolate["sequences"]:
                sequence_docs.append(
                    {**sequence, "otu_id": otu["_id"], "isolate_id": isolate["id"], "reference": {"id": ref_id}}
                )
    if otu_docs:
        db.otus.insert_many(otu_docs)
        db.sequences.insert_many(sequence_docs)


def build_index_files(otus: list[dict], folder: Path) -> Path:
    """What build_index uploads: reference.json.gz of all isolates and a Bowtie2 index of the defaults."""
    folder.mkdir(parents=True, exist_ok=True)
    fasta = folder / "reference.fa"
    with open(fasta, "w") as handle:
        reference_format.write_fasta(reference_format.iter_default_isolate_fasta(otus), handle)
    subprocess.run(
        ["bowtie2-build", "--threads", "2", str(fasta), str(folder / "reference")], check=True, capture_output=True
    )
    exported = reference_format.export_reference(otus, "genome", "virus", name="test", prefer_remote_ids=False)
    reference_format.write_reference_file(exported, folder / "reference.json.gz")
    with open(fasta, "rb") as src, gzip.open(folder / "reference.fa.gz", "wb", compresslevel=1) as dst:
        shutil.copyfileobj(src, dst)
    fasta.unlink()
    return folder


def insert_index(
    db, data_path: str, ref_id: str, otus: list[dict], files: Path | None = None, version: int = 0, ready: bool = True
) -> dict:
    """A ready index of ``otus`` (manifest at ``version``); ``files`` holds its built files, if any."""
    index_id = new_id()
    entries = []
    if files is not None:
        target = Path(data_path) / "indexes" / index_id
        target.mkdir(parents=True)
        for number, path in enumerate(sorted(files.iterdir()), 1):
            shutil.copyfile(path, target / path.name)
            entries.append(
                {
                    "id": number,
                    "name": path.name,
                    "reference": index_id,
                    "size": path.stat().st_size,
                    "type": "bowtie2" if ".bt2" in path.name else "json",
                    "uploaded_at": now(),
                }
            )
    doc = {
        "_id": index_id,
        "version": version,
        "created_at": now(),
        "ready": ready,
        "has_files": bool(entries),
        "files": entries,
        "job": {"id": new_id()},
        "reference": {"id": ref_id},
        "user": {"id": "admin"},
        "manifest": {otu["_id"]: 0 for otu in otus},
        "sequence_otu_map": {s["_id"]: otu["_id"] for otu in otus for i in otu["isolates"] for s in i["sequences"]},
    }
    db.indexes.insert_one(doc)
    return doc


def build_subtraction_files(fasta: Path, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(["bowtie2-build", str(fasta), str(folder / "subtraction")], check=True, capture_output=True)
    return folder


def insert_subtraction(
    db, data_path: str, files: Path | None = None, *, name: str = "Host", ready: bool = True
) -> dict:
    """A subtraction as create_subtraction leaves it, with the Bowtie2 files in ``files``."""
    subtraction_id = new_id()
    entries = []
    if files is not None:
        target = Path(data_path) / "subtractions" / subtraction_id
        target.mkdir(parents=True)
        for path in sorted(files.glob("subtraction.*.bt2")):
            shutil.copyfile(path, target / path.name)
            entries.append({"name": path.name, "size": path.stat().st_size, "type": "bowtie2", "uploaded_at": now()})
    doc = {
        "_id": subtraction_id,
        "name": name,
        "nickname": "",
        "ready": ready,
        "is_host": True,
        "file": {"id": new_id(), "name": "host.fa"},
        "user": {"id": "admin"},
        "job": {"id": new_id()},
        "count": 6,
        "gc": {"a": 0.25, "t": 0.25, "g": 0.25, "c": 0.25, "n": 0.0},
        "files": entries,
        "created_at": now(),
        "deleted": False,
    }
    db.subtractions.insert_one(doc)
    return doc


def load_otus(path: Path = PLANT_REFERENCE) -> list[dict]:
    with gzip.open(path, "rb") as handle:
        return json.load(handle)["otus"]
