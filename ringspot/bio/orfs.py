"""NuVs open reading frames: translation, six-frame ORF search and the contig list.

Follows Virtool's classic ``virtool/bio.py`` (spec ``workflows.md`` section 2, step 6): ORFs are
stop-to-stop stretches of at least 100 residues on both strands and all three frames; no start
codon is required, because assembled contigs are fragments and a viral ORF often begins before
the contig does.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Iterator
from typing import IO

#: Contigs shorter than this are dropped before ORF search.
MIN_CONTIG_LENGTH = 300
#: Shortest stop-to-stop stretch (residues) reported as an ORF.
MIN_ORF_LENGTH = 100

_BASES = "TCAG"
_STANDARD_AMINO_ACIDS = "FFLLSSSSYY**CC*WLLLLPPPPHHQQRRRRIIIMTTTTNNKKSSRRVVVVAAAADDEEGGGG"

#: Standard genetic code, plus the eight four-fold degenerate boxes with ``N`` in the third
#: position: ``N`` there cannot change the residue, so translating it to ``X`` would only shorten
#: ORFs in contigs that SPAdes patched with ``N``. Every other codon translates to ``X``.
CODON_TABLE: dict[str, str] = {
    "".join(codon): amino_acid
    for codon, amino_acid in zip(itertools.product(_BASES, repeat=3), _STANDARD_AMINO_ACIDS, strict=False)
}
CODON_TABLE.update(
    {
        "CTN": "L",
        "GTN": "V",
        "TCN": "S",
        "CCN": "P",
        "ACN": "T",
        "GCN": "A",
        "CGN": "R",
        "GGN": "G",
    }
)

_COMPLEMENT = str.maketrans("ACGTNacgtn", "TGCANtgcan")
_NOT_NUCLEOTIDE = re.compile(r"[^ACGTNacgtn]")
_CODON = re.compile(r"...", re.DOTALL)
# Letters, gaps and stops: anything a sequence line of some FASTA file may hold.
_NOT_SEQUENCE = re.compile(r"[^A-Za-z*.-]")


def read_fasta(handle: IO[str]) -> Iterator[tuple[str, str]]:
    r"""Yield ``(title, sequence)`` for each record of a FASTA text handle.

    Stricter than Biopython's parser, which skips any text before the first ``>``: a file
    that is not FASTA at all must be reported, not read as zero contigs.

    >>> import io
    >>> list(read_fasta(io.StringIO(">c1 cov 5\nACGT\nNNac\n\n>c2\n")))
    [('c1 cov 5', 'ACGTNNac'), ('c2', '')]
    >>> list(read_fasta(io.StringIO("ACGT\n")))
    Traceback (most recent call last):
    ...
    ValueError: line 1: expected a '>' header before sequence lines (is this a FASTA file?)
    """
    title = None
    chunks: list[str] = []
    for number, line in enumerate(handle, start=1):
        line = line.strip()
        if line.startswith(">"):
            if title is not None:
                yield title, "".join(chunks)
            title, chunks = line[1:].strip(), []
        elif not line:
            continue
        elif title is None:
            raise ValueError(f"line {number}: expected a '>' header before sequence lines (is this a FASTA file?)")
        elif bad := _NOT_SEQUENCE.search(line):
            raise ValueError(f"line {number}: {bad.group()!r} cannot appear in a sequence")
        else:
            chunks.append(line)
    if title is not None:
        yield title, "".join(chunks)


def translate(nuc: str) -> str:
    """Translate ``nuc`` codon by codon from its first base; a trailing partial codon is ignored.

    >>> translate("ATGGCNTAAnnnGC")
    'MA*X'
    """
    # One regex pass plus a dict lookup per codon is several times faster than slicing in a loop.
    return "".join([CODON_TABLE.get(codon, "X") for codon in _CODON.findall(nuc.upper())])


def reverse_complement(seq: str) -> str:
    """Reverse complement of ``seq``; only A, C, G, T and N (either case) are understood.

    >>> reverse_complement("AACGTN")
    'NACGTT'
    >>> reverse_complement("ACRT")
    Traceback (most recent call last):
    ...
    ValueError: cannot complement 'R' at position 2: only A, C, G, T and N are allowed
    """
    bad = _NOT_NUCLEOTIDE.search(seq)
    if bad:
        raise ValueError(
            f"cannot complement {bad.group()!r} at position {bad.start()}: only A, C, G, T and N are allowed"
        )
    return seq.translate(_COMPLEMENT)[::-1]


def find_orfs(seq: str) -> list[dict]:
    """All stop-to-stop ORFs of at least 100 residues in both strands, frames 0-2.

    Each ORF is ``{pro, nuc, frame, strand, pos: [start, end]}``; ``pos`` are 0-based, end
    exclusive, on the forward strand, and include the closing stop codon; ``nuc`` is the coding
    strand (reverse complemented for strand -1), so ``translate(nuc)`` starts with ``pro``.
    Contigs of 300 bp or less have no ORFs.

    >>> orfs = find_orfs("ATG" + "GCT" * 120 + "TGA" + "CC")  # GCT repeats read open in all frames
    >>> [(orf["strand"], orf["frame"], orf["pos"], orf["pro"][:4]) for orf in orfs][:2]
    [(1, 0, [0, 366], 'MAAA'), (1, 1, [1, 368], 'WLLL')]
    >>> find_orfs("ATG" * 100)
    []
    """
    length = len(seq)
    if length <= MIN_CONTIG_LENGTH:
        return []
    orfs = []
    for strand, nuc in ((1, seq), (-1, reverse_complement(seq))):
        for frame in range(3):
            aa_start = 0
            for pro in translate(nuc[frame:]).split("*"):
                aa_end = aa_start + len(pro)
                if len(pro) >= MIN_ORF_LENGTH:
                    start, end = _orf_position(length, strand, frame, aa_start, aa_end)
                    coding = seq[start:end] if strand == 1 else reverse_complement(seq[start:end])
                    orfs.append({"pro": pro, "nuc": coding, "frame": frame, "strand": strand, "pos": [start, end]})
                aa_start = aa_end + 1  # skip the stop codon
    return orfs


def _orf_position(length: int, strand: int, frame: int, aa_start: int, aa_end: int) -> tuple[int, int]:
    """Forward-strand nucleotide span of residues ``aa_start:aa_end`` plus their stop codon.

    An ORF that runs off the end of the contig has no stop codon to include, so its span is
    clipped to the contig. Virtool clips the + strand only and can store a negative start for
    such an ORF on the - strand; we clip both so that ``seq[start:end]`` is always the ORF.
    """
    if strand == 1:
        return frame + 3 * aa_start, min(length, frame + 3 * aa_end + 3)
    return max(0, length - frame - 3 * aa_end - 3), length - frame - 3 * aa_start


def process_contigs(records: Iterable) -> list[dict]:
    """The NuVs contig list: contigs of at least 300 bp that have ORFs, in input order.

    ``records`` yields sequences as strings, ``(title, sequence)`` pairs (as Biopython's
    ``SimpleFastaParser`` gives) or objects with a ``seq`` attribute (``SeqRecord``). A contig's
    ``index`` is its place in the returned list, which is what the BLAST endpoint's
    ``sequence_index`` points at; ORFs lose ``nuc`` and get an ``index`` and empty ``hits`` for
    the HMM step to fill.

    >>> contigs = process_contigs([("short", "ACGT"), ("c1", "ATG" + "GCT" * 120 + "TGA")])
    >>> [(c["index"], len(c["orfs"]), c["orfs"][0]["hits"]) for c in contigs]
    [(0, 6, [])]
    """
    contigs: list[dict] = []
    for number, record in enumerate(records, start=1):
        title, sequence = _title_and_sequence(record)
        if len(sequence) < MIN_CONTIG_LENGTH:
            continue
        try:
            orfs = find_orfs(sequence)
        except ValueError as error:
            raise ValueError(f"contig {number} ({title}): {error}") from None
        if not orfs:
            continue
        contigs.append(
            {
                "index": len(contigs),
                "sequence": sequence,
                "orfs": [
                    {
                        "index": orf_index,
                        "frame": orf["frame"],
                        "strand": orf["strand"],
                        "pos": orf["pos"],
                        "pro": orf["pro"],
                        "hits": [],
                    }
                    for orf_index, orf in enumerate(orfs)
                ],
            }
        )
    return contigs


def _title_and_sequence(record) -> tuple[str, str]:
    if isinstance(record, str):
        return "", record
    if isinstance(record, tuple):
        title, sequence = record
        return title, str(sequence)
    return getattr(record, "id", ""), str(record.seq)


def iter_orf_fasta(contigs: Iterable[dict]) -> Iterator[str]:
    """FASTA records ``>sequence_{contig}.{orf}\\n{pro}\\n`` for hmmscan, one per ORF.

    >>> list(iter_orf_fasta([{"index": 3, "orfs": [{"index": 0, "pro": "MAK"}]}]))
    ['>sequence_3.0\\nMAK\\n']
    """
    for contig in contigs:
        for orf in contig["orfs"]:
            yield f">sequence_{contig['index']}.{orf['index']}\n{orf['pro']}\n"


def write_orfs_fasta(contigs: Iterable[dict], handle: IO[str]) -> int:
    """Write every ORF of ``contigs`` to ``handle`` as FASTA; return how many were written."""
    count = 0
    for record in iter_orf_fasta(contigs):
        handle.write(record)
        count += 1
    return count
