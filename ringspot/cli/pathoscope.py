"""``ringspot pathoscope``: run the Pathoscope reassignment offline on an alignment file."""

from __future__ import annotations

import gzip
import json
import numbers
import zlib
from pathlib import Path
from typing import IO, cast

import click

from ringspot.bio.pathoscope import read_sam, read_vta, run_pathoscope

GZIP_MAGIC = b"\x1f\x8b"
#: Report rows echoed in the summary.
SUMMARY_HITS = 5

_input_file = click.Path(exists=True, dir_okay=False, path_type=Path)


def _open_binary(path: Path) -> IO[bytes]:
    """Open ``path`` for reading bytes, through gzip when it starts with the gzip magic."""
    with open(path, "rb") as probe:
        compressed = probe.read(2) == GZIP_MAGIC
    return cast(IO[bytes], gzip.open(path, "rb") if compressed else open(path, "rb"))


def _load_json(path: Path, option: str) -> object:
    """Return the JSON document in ``path`` or stop with a message naming ``option``."""
    try:
        with _open_binary(path) as handle:
            return json.load(handle)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise click.BadParameter(f"{path} is not a JSON file ({error})", param_hint=option) from None


def _json_mapping(path: Path, option: str, what: str) -> dict:
    """Load a JSON object from ``path``, refusing anything else."""
    document = _load_json(path, option)
    if not isinstance(document, dict):
        raise click.BadParameter(f"{path} must hold a JSON object of {what}", param_hint=option)
    return document


def _numbers_by_id(path: Path, option: str, what: str, integral: bool = False) -> dict:
    """Load a JSON object whose values must all be numbers (integers when ``integral``)."""
    document = _json_mapping(path, option, what)
    kind = numbers.Integral if integral else numbers.Real
    for key, value in document.items():
        if isinstance(value, bool) or not isinstance(value, kind):
            raise click.BadParameter(f"{path}: value of {key!r} is {value!r}, expected {what}", param_hint=option)
    return document


def _load_index(path: Path) -> tuple[dict, dict]:
    """Return ``(sequence_otu_map, manifest)`` from an index JSON file."""
    index = _json_mapping(path, "--index", "'manifest' and 'sequence_otu_map'")
    sequence_otu_map, manifest = index.get("sequence_otu_map"), index.get("manifest")
    if not isinstance(sequence_otu_map, dict) or not isinstance(manifest, dict):
        raise click.BadParameter(
            f"{path} needs objects 'manifest' (otu id -> version) and 'sequence_otu_map' (sequence id -> otu id)",
            param_hint="--index",
        )
    return sequence_otu_map, manifest


def _summarise(results: dict, out_dir: Path) -> None:
    """Print the counts and the leading hits."""
    click.echo(
        f"{results['read_count']} reads aligned, {results['subtracted_count']} subtracted, "
        f"{len(results['hits'])} hits reported"
    )
    for hit in results["hits"][:SUMMARY_HITS]:
        click.echo(
            f"  {hit['id']:<30} otu {hit['otu']['id']:<12} pi {hit['final']['pi']:.4f}  "
            f"reads {hit['final']['reads']:>7}  coverage {hit['coverage']:.3f}  depth {hit['depth']}"
        )
    click.echo(f"wrote {out_dir / 'report.tsv'} and {out_dir / 'hits.json'}")


@click.command("pathoscope")
@click.option(
    "--vta", type=_input_file, help="Alignments as VTA lines read_id,ref_id,pos,length,p_score (.gz allowed)."
)
@click.option("--sam", type=_input_file, help="Alignments as bowtie2 SAM against the isolate index (.gz allowed).")
@click.option(
    "--ref-lengths", "ref_lengths_path", type=_input_file, required=True, help="JSON object: sequence id -> length."
)
@click.option(
    "--index",
    "index_path",
    type=_input_file,
    required=True,
    help="JSON with 'manifest' (otu id -> version) and 'sequence_otu_map' (sequence id -> otu id).",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Directory for report.tsv and hits.json (created if missing).",
)
@click.option(
    "--subtraction-scores",
    "subtraction_path",
    type=_input_file,
    help="JSON object: read id -> best p_score against a subtraction host.",
)
def pathoscope(vta, sam, ref_lengths_path, index_path, out_dir, subtraction_path):
    """Reassign reads with Pathoscope's EM and write report.tsv and hits.json."""
    if (vta is None) == (sam is None):
        raise click.UsageError("give exactly one of --vta or --sam")
    ref_lengths = _numbers_by_id(ref_lengths_path, "--ref-lengths", "sequence id -> integer length", integral=True)
    sequence_otu_map, manifest = _load_index(index_path)
    subtraction = None
    if subtraction_path is not None:
        subtraction = _numbers_by_id(subtraction_path, "--subtraction-scores", "read id -> numeric p_score")
    alignment_path = vta or sam
    parse = read_vta if vta else read_sam
    try:
        with _open_binary(alignment_path) as handle:
            results = run_pathoscope(parse(handle), ref_lengths, sequence_otu_map, manifest, out_dir, subtraction)
    except (ValueError, OSError, EOFError, zlib.error) as error:
        raise click.ClickException(f"{alignment_path}: {error}") from None
    # The whole result document: read_count and subtracted_count travel with the hits.
    (out_dir / "hits.json").write_text(json.dumps(results))
    _summarise(results, out_dir)
