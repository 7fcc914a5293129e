"""HMMER for NuVs: press and check vFam profiles, scan ORFs, read the hits back.

Spec ``workflows.md`` section 2, step 7. Unlike Virtool we store ``best_score`` and
``best_bias`` from their own columns (Virtool swapped them), and an E-value cut-off can be
asked for; by default HMMER's reporting threshold (E <= 10) is the only filter.
"""

from __future__ import annotations

import gzip
import io
import os
import re
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO

from ringspot.bio import runner

#: Files ``hmmpress`` writes next to the profiles.
PRESSED_SUFFIXES = (".h3m", ".h3i", ".h3f", ".h3p")
#: Columns of a ``--tblout`` line before the free-text target description.
TBLOUT_COLUMNS = 18

_QUERY_NAME = re.compile(r"sequence_(\d+)\.(\d+)")
_GZIP_MAGIC = b"\x1f\x8b"
_SCORE_KEYS = ("full_e", "full_score", "full_bias", "best_e", "best_score", "best_bias")


def is_pressed(profiles_path: str | os.PathLike) -> bool:
    """True if every ``hmmpress`` output exists and none is older than the profiles."""
    profiles = Path(profiles_path)
    profiles_mtime = profiles.stat().st_mtime
    for suffix in PRESSED_SUFFIXES:
        pressed = profiles.with_name(profiles.name + suffix)
        if not pressed.exists() or pressed.stat().st_mtime < profiles_mtime:
            return False
    return True


def hmmpress(
    profiles_path: str | os.PathLike,
    *,
    timeout: float | None = None,
    cancel: threading.Event | None = None,
) -> bool:
    """Press the profiles for ``hmmscan`` unless up-to-date pressed files exist; True if pressed.

    ``hmmpress`` cannot read gzip, and it "presses" a malformed file into zero models without
    complaint, so check new profiles with ``validate_profiles`` first.
    """
    if _is_gzipped(profiles_path):
        raise ValueError(f"{profiles_path} is gzipped: hmmpress needs the decompressed file")
    if is_pressed(profiles_path):
        return False
    # -f: stale index files from older profiles would otherwise make hmmpress refuse to run.
    runner.run(["hmmpress", "-f", os.fspath(profiles_path)], timeout=timeout, cancel=cancel)
    return True


def hmmscan(
    profiles_path: str | os.PathLike,
    orfs_fasta: str | os.PathLike,
    tblout_path: str | os.PathLike,
    cpu: int = 1,
    *,
    timeout: float | None = None,
    cancel: threading.Event | None = None,
) -> None:
    """Scan the ORF translations in ``orfs_fasta`` against pressed profiles into a tblout file.

    No threshold is passed: HMMER reports hits with E <= 10 and ``parse_tblout`` filters further
    if asked. ``cpu`` is hmmscan's worker thread count (0 runs it single-threaded).
    """
    if cpu < 0:
        raise ValueError(f"cpu must be 0 or more, not {cpu}")
    argv = [
        "hmmscan",
        "--tblout",
        os.fspath(tblout_path),
        "--noali",
        "--cpu",
        str(cpu),
        os.fspath(profiles_path),
        os.fspath(orfs_fasta),
    ]
    runner.run(argv, timeout=timeout, cancel=cancel)  # the verbose report on stdout is discarded


def parse_tblout(handle: IO[str], evalue_cutoff: float | None = None) -> Iterator[dict]:
    """Yield one hit per vFam line of an ``hmmscan --tblout`` file.

    A hit is ``{contig, orf, cluster, full_e, full_score, full_bias, best_e, best_score,
    best_bias}``; ``contig`` and ``orf`` come from the query name ``sequence_{contig}.{orf}``.
    With ``evalue_cutoff``, hits whose full-sequence E-value is above it are dropped.

    >>> import io
    >>> line = "vFam_9  -  sequence_0.3  -  3.9e-135  440.7  4.5  5e-135  440.3  4.5" + " 1" * 8 + " -"
    >>> hit, = parse_tblout(io.StringIO("# comment\\n" + line + "\\n"))
    >>> hit["contig"], hit["orf"], hit["cluster"], hit["best_score"], hit["best_bias"]
    (0, 3, 9, 440.3, 4.5)
    >>> list(parse_tblout(io.StringIO(line + "\\n"), evalue_cutoff=1e-200))
    []
    """
    for number, line in enumerate(handle, start=1):
        if line.startswith("#") or not line.strip():
            continue
        fields = line.split(maxsplit=TBLOUT_COLUMNS)
        if len(fields) < TBLOUT_COLUMNS:
            raise ValueError(
                f"line {number}: {len(fields)} columns where a tblout line has at least "
                f"{TBLOUT_COLUMNS} (not hmmscan --tblout output, or truncated?)"
            )
        target, _, query = fields[:3]
        if not target.startswith("vFam"):
            continue
        hit = _tblout_hit(number, target, query, fields)
        if evalue_cutoff is None or hit["full_e"] <= evalue_cutoff:
            yield hit


def _tblout_hit(number: int, target: str, query: str, fields: list[str]) -> dict:
    match = _QUERY_NAME.fullmatch(query)
    if not match:
        raise ValueError(f"line {number}: query {query!r} is not named sequence_<contig>.<orf>")
    try:
        cluster = int(target.split("_")[1])
        # HMMER's order: full E-value, score, bias, then best-domain E-value, score, bias.
        full_e, full_score, full_bias, best_e, best_score, best_bias = map(float, fields[4:10])
    except (IndexError, ValueError):
        raise ValueError(f"line {number}: cannot read a cluster from {target!r} or numbers from columns 5-10") from None
    return {
        "contig": int(match.group(1)),
        "orf": int(match.group(2)),
        "cluster": cluster,
        "full_e": full_e,
        "full_score": full_score,
        "full_bias": full_bias,
        "best_e": best_e,
        "best_score": best_score,
        "best_bias": best_bias,
    }


def attach_hits(contigs: list[dict], hits: Iterable[dict], hit_ids: dict[int, str]) -> list[dict]:
    """Append each hit to its ORF's ``hits`` as ``{hit, full_e, ... best_bias}``; return ``contigs``.

    ``hit_ids`` maps a vFam cluster to its annotation id. Contigs without hits stay, as they
    always have in Virtool (its removal branch could never fire), and their ``index`` must keep
    matching their place in the list for BLAST.

    >>> contigs = [{"index": 0, "orfs": [{"index": 0, "hits": []}]}]
    >>> hit = dict(contig=0, orf=0, cluster=9, full_e=1e-5, full_score=30.0, full_bias=0.1,
    ...            best_e=2e-5, best_score=29.0, best_bias=0.2)
    >>> attach_hits(contigs, [hit], {9: "abc123"})[0]["orfs"][0]["hits"][0]["hit"]
    'abc123'
    """
    orfs = {(contig["index"], orf["index"]): orf for contig in contigs for orf in contig["orfs"]}
    for hit in hits:
        try:
            orf = orfs[(hit["contig"], hit["orf"])]
        except KeyError:
            name = f"sequence_{hit['contig']}.{hit['orf']}"
            raise ValueError(f"hit for {name}, an ORF not in the contigs") from None
        try:
            hit_id = hit_ids[hit["cluster"]]
        except KeyError:
            raise ValueError(f"hit to vFam_{hit['cluster']}, a cluster without annotation") from None
        orf["hits"].append({"hit": hit_id, **{key: hit[key] for key in _SCORE_KEYS}})
    return contigs


def validate_profiles(path: str | os.PathLike) -> list[str]:
    """Check an HMMER3 profile file (plain or gzipped) model by model; return the model names.

    Each model must start with a ``HMMER3/`` line, carry a ``NAME`` and end with ``//``; names
    must be unique. This is what ``hmmpress`` needs and does not itself check.
    """
    try:
        with _open_text(path) as handle:
            return list(iter_profile_names(handle))
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not a text file of HMMER3 profiles") from None
    except (EOFError, gzip.BadGzipFile) as error:
        raise ValueError(f"{path}: damaged gzip file ({error})") from None
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from None


def iter_profile_names(handle: IO[str]) -> Iterator[str]:
    """Yield the NAME of each model of an HMMER3 profile text; ValueError on a malformed one.

    >>> import io
    >>> list(iter_profile_names(io.StringIO("HMMER3/f [3.1b2]\\nNAME  vFam_2\\nLENG 9\\n//\\n")))
    ['vFam_2']
    >>> list(iter_profile_names(io.StringIO("HMMER3/f\\nNAME  vFam_2\\nLENG 9\\n")))
    Traceback (most recent call last):
    ...
    ValueError: line 3: model vFam_2 (from line 1) does not end with '//' (truncated file?)
    """
    start = None  # line number of the current model's header, None between models
    name = None
    seen: set[str] = set()
    number = 0
    for number, line in enumerate(handle, start=1):
        if start is None:
            if line.startswith("HMMER3/"):
                start, name = number, None
            elif line.strip():
                raise ValueError(f"line {number}: expected a 'HMMER3/' header, found {line[:40].rstrip()!r}")
        elif line.startswith("//"):
            if name is None:
                raise ValueError(f"line {number}: model from line {start} has no NAME")
            if name in seen:
                raise ValueError(f"line {number}: second model named {name}")
            seen.add(name)
            yield name
            start = None
        elif line.startswith("NAME"):
            fields = line.split()
            if len(fields) != 2:
                raise ValueError(f"line {number}: NAME line should hold one name: {line.rstrip()!r}")
            name = fields[1]
        elif line.startswith("HMMER3/"):
            raise ValueError(f"line {number}: new model before the one from line {start} ended with '//'")
    if start is not None:
        raise ValueError(
            f"line {number}: model {name or '(no NAME)'} (from line {start}) does not end with '//' (truncated file?)"
        )
    if not seen:
        raise ValueError("no HMMER3 models found")


def validate_annotations(annotations: Iterable[dict], profile_names: Iterable[str]) -> None:
    """Check that annotations and profiles describe the same vFam clusters, one to one.

    >>> validate_annotations([{"cluster": 2}, {"cluster": 3}], ["vFam_3", "vFam_2"])
    >>> validate_annotations([{"cluster": 2}, {"cluster": 7}], ["vFam_2", "vFam_3"])
    Traceback (most recent call last):
    ...
    ValueError: annotation for cluster 7 has no profile vFam_7
    """
    names = list(profile_names)
    name_set = set(names)
    annotated = set()
    for position, annotation in enumerate(annotations):
        try:
            name = f"vFam_{annotation['cluster']}"
        except (KeyError, TypeError):
            raise ValueError(f"annotation {position} has no cluster") from None
        if name not in name_set:
            raise ValueError(f"annotation for cluster {annotation['cluster']} has no profile {name}")
        annotated.add(name)
    for name in names:
        if name not in annotated:
            raise ValueError(f"profile {name} has no annotation")


def _is_gzipped(path: str | os.PathLike) -> bool:
    with open(path, "rb") as raw:
        return raw.read(2) == _GZIP_MAGIC


def _open_text(path: str | os.PathLike) -> IO[str]:
    if _is_gzipped(path):
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="ascii")
    return open(path, encoding="ascii")
