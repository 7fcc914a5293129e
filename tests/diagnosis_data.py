"""The real samples of ``../shared/data/samples`` with the virus the data README names for each, and
the reference that can find it: the plant-virus reference, plus the virus's own genome where
that reference lacks it (measles). Shared by the diagnosis tests and ``bench/bench_diagnosis.py``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ringspot.bio.trim import reads_for_mapping

from .analyses_data import DATA

SAMPLES_DIR = DATA / "samples"
#: The QIAseq miRNA 3' adapter the small-RNA sample's reads carry (data README).
QIASEQ_ADAPTER = "AACTGTAGGCACCATCAAT"
MEASLES_FASTA = SAMPLES_DIR / "mev-d8-srr7517490" / "MH356245.1.reference.fasta"
MEASLES_OTU_ID = "mevd8otu"


@dataclass(frozen=True)
class RealSample:
    name: str
    reads: tuple[Path, ...]
    library_type: str
    #: The virus the data README says the sample holds, and its OTU.
    virus: str
    otu_id: str

    @property
    def paired(self) -> bool:
        return len(self.reads) == 2


SAMPLES = (
    RealSample(
        "rprsv-paired-nextseq",
        (
            SAMPLES_DIR / "rprsv-paired-nextseq" / "paired_1.fq.gz",
            SAMPLES_DIR / "rprsv-paired-nextseq" / "paired_2.fq.gz",
        ),
        "normal",
        "Raspberry ringspot virus",
        "9fe2f60d",
    ),
    RealSample(
        "example-paired-50bp",
        (SAMPLES_DIR / "example-paired-50bp" / "reads_1.fq.gz", SAMPLES_DIR / "example-paired-50bp" / "reads_2.fq.gz"),
        "normal",
        "Physalis rugose mosaic virus",
        "73him4fh",
    ),
    RealSample(
        "mev-d8-srr7517490",
        (
            SAMPLES_DIR / "mev-d8-srr7517490" / "SRR7517490_R1.fastq.gz",
            SAMPLES_DIR / "mev-d8-srr7517490" / "SRR7517490_R2.fastq.gz",
        ),
        "normal",
        "Measles virus",
        MEASLES_OTU_ID,
    ),
    RealSample(
        "glrav1-grapevine-125reads",
        (SAMPLES_DIR / "glrav1-grapevine-125reads.fq.gz",),
        "normal",
        "Grapevine leafroll-associated virus 1",
        "e681030f",
    ),
    RealSample(
        "ctv-srna-qiaseq-lane1",
        (SAMPLES_DIR / "ctv-srna-qiaseq-lane1" / "reads.fastq.gz",),
        "srna",
        "Citrus tristeza virus",
        "7cee0a88",
    ),
)


def sample_named(name: str) -> RealSample:
    return next(sample for sample in SAMPLES if sample.name == name)


def measles_otu() -> dict:
    """MH356245.1 as a one-isolate OTU, shaped as the OTUs of a reference file."""
    lines = MEASLES_FASTA.read_text().splitlines()
    definition = lines[0][1:].strip()
    return {
        "_id": MEASLES_OTU_ID,
        "name": "Measles virus",
        "abbreviation": "MeV",
        "schema": [],
        "taxid": None,
        "isolates": [
            {
                "id": "mevd8iso",
                "default": True,
                "source_type": "genotype",
                "source_name": "D8",
                "sequences": [
                    {
                        "_id": "mh356245",
                        "accession": "MH356245.1",
                        "definition": definition.split(" ", 1)[1],
                        "host": "Homo sapiens",
                        "sequence": "".join(line.strip() for line in lines[1:]).upper(),
                    }
                ],
            }
        ],
    }


def add_missing_virus(otus: list[dict], samples=SAMPLES) -> list[dict]:
    """The plant-virus OTUs plus the genome of any sample's virus they lack (measles)."""
    known = {otu["_id"] for otu in otus}
    extra = [measles_otu()] if any(s.otu_id == MEASLES_OTU_ID for s in samples) and MEASLES_OTU_ID not in known else []
    return otus + extra


def prepare_reads(sample: RealSample, work: Path) -> Path:
    """One FASTQ of the sample's reads as the jobs map them: mates apart, small RNAs trimmed
    (adapter detected)."""
    (reads,) = reads_for_mapping(list(sample.reads), work / "prepared", library_type=sample.library_type, cores=2)
    return reads
