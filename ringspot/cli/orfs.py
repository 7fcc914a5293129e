"""``ringspot orfs``: NuVs ORF finding on any FASTA of contigs, offline."""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path

import click

from ringspot.bio import orfs as bio_orfs

_GZIP_MAGIC = b"\x1f\x8b"


@click.command("orfs")
@click.argument("fasta", type=click.Path(exists=True, dir_okay=False, readable=True, path_type=Path))
@click.option(
    "--out",
    "-o",
    default="-",
    show_default=True,
    type=click.Path(dir_okay=False, writable=True, allow_dash=True, path_type=Path),
    help="JSON file to write; '-' writes to standard output.",
)
def orfs(fasta: Path, out: Path) -> None:
    """Find ORFs in the contigs of FASTA (plain or gzipped) as NuVs does.

    Contigs shorter than 300 bp and contigs without an ORF of at least 100 residues
    (stop to stop, both strands, three frames) are left out. Writes the NuVs contig
    list: [{index, sequence, orfs: [{index, frame, strand, pos, pro}]}].
    """
    try:
        contigs = _find(fasta)
    except UnicodeDecodeError:  # a ValueError too, but its message speaks of codecs
        raise click.ClickException(
            f"{fasta} is not a FASTA file of contigs: it holds bytes that are not ASCII text"
        ) from None
    except (ValueError, EOFError, gzip.BadGzipFile) as error:
        raise click.ClickException(f"{fasta} is not a FASTA file of contigs: {error}") from None
    for contig in contigs:
        for orf in contig["orfs"]:
            del orf["hits"]  # filled by the HMM step of an analysis, meaningless here
    text = json.dumps(contigs, indent=2) + "\n"
    if str(out) == "-":
        click.echo(text, nl=False)
    else:
        try:
            out.write_text(text)
        except OSError as error:
            raise click.ClickException(f"cannot write {out}: {error.strerror}") from None
    orf_count = sum(len(contig["orfs"]) for contig in contigs)
    click.echo(f"{len(contigs)} contigs with {orf_count} ORFs", err=True)


def _find(fasta: Path) -> list[dict]:
    with open(fasta, "rb") as raw:
        gzipped = raw.read(2) == _GZIP_MAGIC
    opener = gzip.open if gzipped else open
    with opener(fasta, "rb") as binary:
        handle = io.TextIOWrapper(binary, encoding="ascii")
        records = list(bio_orfs.read_fasta(handle))
    if not records:
        raise ValueError("it holds no sequences")
    return bio_orfs.process_contigs(records)
