"""Real mate files rewritten under each read-naming convention sequencers and archives use.

Only the names change: sequences and qualities are the real reads, so whatever a tool counts
must come out the same for every convention.
"""

from __future__ import annotations

import gzip
from pathlib import Path

from ringspot.bio.fastq import read_fastq, read_word


def _casava(word: str, mate: int) -> str:
    return f"{word} {mate}:N:0:ACATCG"


#: Convention -> the header of mate ``mate`` of a pair whose shared name is ``word``.
CONVENTIONS = {
    "casava": _casava,  # Casava 1.8: a space, then the mate number in the comment
    "slash": lambda word, mate: f"{word}/{mate}",
    "semicolon": lambda word, mate: f"{word};{mate}",
    "sra": lambda word, mate: word,  # fastq-dump: the same name in both files
    "sra_readids": lambda word, mate: f"{word}.{mate}",  # fastq-dump --readids
}


def write_pair(
    mates: tuple[Path, Path], folder: Path, convention: str, pairs: int | None = None, every: int = 1
) -> list[Path]:
    """The first ``pairs`` pairs of ``mates`` (or every ``every``-th pair) named by ``convention``, gzipped."""
    name = CONVENTIONS[convention]
    targets = []
    for mate, source in enumerate(mates, start=1):
        target = folder / f"reads_{mate}.fq.gz"
        with gzip.open(source, "rb") as handle, gzip.open(target, "wt", compresslevel=1) as out:
            for number, record in enumerate(read_fastq(handle)):
                if pairs is not None and number == pairs:
                    break
                if number % every:
                    continue
                word = read_word(record.name).removesuffix(f"/{mate}").removesuffix(f";{mate}")
                out.write(f"@{name(word, mate)}\n{record.sequence}\n+\n{record.quality}\n")
        targets.append(target)
    return targets
