"""The quality document: FastQC 0.11.9's numbers, laid out as Virtool's parse_fastqc did.

Every figure below was printed by FastQC 0.11.9 (Debian's ``fastqc``) run as the
create_sample workflow ran it (``fastqc -f fastq --extract``) on the shared data, and
copied from its ``fastqc_data.txt``. FastQC is not needed to run these tests.
"""

from __future__ import annotations

import doctest
import gzip
import math
import re
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from ringspot.bio import fastq, quality
from ringspot.bio.fastq import count_records
from ringspot.bio.quality import (
    base_groups,
    fastqc_report,
    merge_quality_documents,
    quality_document,
    quality_of_files,
)

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
NAN = math.nan


def synthetic_reads() -> bytes:
    """Deterministic awkward reads: Phred+64, lower case, N, CRLF, lengths 0..1000."""
    letters = "ACGTNacgtn"
    records = []
    for i in range(300):
        length = 1000 if i % 60 == 0 else (i * 37) % 151
        sequence = "".join(letters[(i * 3 + j * j) % 10] for j in range(length))
        quality = "".join(chr(66 + (i * 7 + j * 3) % 39) for j in range(length))
        records.append(f"@read{i} synthetic\r\n{sequence}\r\n+\r\n{quality}\r\n")
    return "".join(records).encode()


def ungrouped(length: int) -> list[str]:
    return [str(position) for position in range(1, length + 1)]


@dataclass
class FastqcFigures:
    """Figures from one fastqc_data.txt; per-base rows are keyed by FastQC's labels."""

    encoding: str
    count: int
    length: tuple[int, int]
    gc: int
    groups: list[str]
    per_base_quality: dict[str, tuple[float, ...]]
    per_base_content: dict[str, tuple[float, ...]]
    per_sequence_quality: dict[int, int]


FASTQC = {
    "samples/example-paired-50bp/reads_1.fq.gz": FastqcFigures(
        encoding="Sanger / Illumina 1.9",
        count=25000,
        length=(50, 50),
        gc=46,
        groups=ungrouped(50),
        per_base_quality={
            "1": (26.9422, 32.0, 27.0, 32.0, 12.0, 32.0),
            "9": (38.65524, 41.0, 41.0, 41.0, 32.0, 41.0),
            "10": (37.962, 41.0, 37.0, 41.0, 27.0, 41.0),
            "26": (38.70264, 41.0, 37.0, 41.0, 32.0, 41.0),
            "50": (37.10776, 41.0, 37.0, 41.0, 27.0, 41.0),
        },
        per_base_content={
            "1": (93.28, 1.424, 2.1239999999999997, 3.1719999999999997),
            "9": (20.183999999999997, 28.588, 33.128, 18.099999999999998),
            "10": (19.78633162612036, 28.16101152368758, 28.84122919334187, 23.21142765685019),
            "26": (53.58702183056279, 23.681153615061085, 10.923292609653515, 11.808531944722612),
            "50": (9.521904380876176, 51.09421884376876, 14.342868573714743, 25.04100820164033),
        },
        per_sequence_quality={
            13: 2,
            14: 0,
            15: 2,
            16: 5,
            17: 24,
            18: 33,
            19: 74,
            20: 88,
            21: 111,
            22: 162,
            23: 168,
            24: 187,
            25: 227,
            26: 300,
            27: 306,
            28: 348,
            29: 400,
            30: 454,
            31: 532,
            32: 596,
            33: 726,
            34: 856,
            35: 1077,
            36: 1598,
            37: 2086,
            38: 3099,
            39: 6346,
            40: 5193,
        },
    ),
    "samples/example-paired-50bp/reads_2.fq.gz": FastqcFigures(
        encoding="Sanger / Illumina 1.9",
        count=25000,
        length=(50, 50),
        gc=47,
        groups=ungrouped(50),
        per_base_quality={
            "1": (31.437, 32.0, 32.0, 32.0, 32.0, 32.0),
            "9": (39.73112, 41.0, 41.0, 41.0, 37.0, 41.0),
            "10": (40.1808, 41.0, 41.0, 41.0, 37.0, 41.0),
            "26": (38.8854, 41.0, 41.0, 41.0, 37.0, 41.0),
            "50": (36.173, 41.0, 37.0, 41.0, 22.0, 41.0),
        },
        per_base_content={
            "1": (15.488, 46.967999999999996, 22.375999999999998, 15.168000000000001),
            "9": (22.488, 30.972, 27.372000000000003, 19.168),
            "10": (27.064, 28.668, 28.62, 15.648000000000001),
            "26": (18.748, 56.96, 10.76, 13.532),
            "50": (5.576, 11.264000000000001, 22.804, 60.356),
        },
        per_sequence_quality={
            20: 1,
            21: 0,
            22: 0,
            23: 5,
            24: 8,
            25: 22,
            26: 38,
            27: 48,
            28: 88,
            29: 128,
            30: 167,
            31: 216,
            32: 288,
            33: 421,
            34: 524,
            35: 703,
            36: 982,
            37: 1545,
            38: 2649,
            39: 7174,
            40: 9993,
        },
    ),
    "samples/rprsv-paired-nextseq/paired_1.fq.gz": FastqcFigures(
        encoding="Sanger / Illumina 1.9",
        count=10000,
        length=(36, 151),
        gc=45,
        groups=[
            "1",
            "2",
            "3",
            "4",
            "5",
            "6",
            "7",
            "8",
            "9",
            "10-14",
            "15-19",
            "20-24",
            "25-29",
            "30-34",
            "35-39",
            "40-44",
            "45-49",
            "50-54",
            "55-59",
            "60-64",
            "65-69",
            "70-74",
            "75-79",
            "80-84",
            "85-89",
            "90-94",
            "95-99",
            "100-104",
            "105-109",
            "110-114",
            "115-119",
            "120-124",
            "125-129",
            "130-134",
            "135-139",
            "140-144",
            "145-149",
            "150-151",
        ],
        per_base_quality={
            "1": (30.6651, 32.0, 32.0, 32.0, 27.0, 32.0),
            "2": (30.7629, 32.0, 32.0, 32.0, 27.0, 32.0),
            "3": (30.6577, 32.0, 32.0, 32.0, 27.0, 32.0),
            "4": (31.0211, 32.0, 32.0, 32.0, 27.0, 32.0),
            "5": (31.0247, 32.0, 32.0, 32.0, 27.0, 32.0),
            "6": (34.901, 37.0, 37.0, 37.0, 32.0, 37.0),
            "7": (34.7393, 37.0, 37.0, 37.0, 27.0, 37.0),
            "8": (34.4908, 37.0, 37.0, 37.0, 27.0, 37.0),
            "9": (34.371, 37.0, 37.0, 37.0, 27.0, 37.0),
            "10-14": (34.05274, 37.0, 37.0, 37.0, 27.0, 37.0),
            "15-19": (33.79762, 37.0, 37.0, 37.0, 24.0, 37.0),
            "20-24": (33.66448, 37.0, 36.0, 37.0, 22.0, 37.0),
            "25-29": (33.940659999999994, 37.0, 37.0, 37.0, 27.0, 37.0),
            "30-34": (33.580639999999995, 37.0, 36.0, 37.0, 22.0, 37.0),
            "35-39": (33.528682450419865, 37.0, 37.0, 37.0, 22.0, 37.0),
            "40-44": (33.444921591302226, 37.0, 34.0, 37.0, 22.0, 37.0),
            "45-49": (33.3244747609786, 37.0, 32.0, 37.0, 22.0, 37.0),
            "50-54": (33.24767769559874, 37.0, 32.0, 37.0, 22.0, 37.0),
            "55-59": (32.9576278112876, 37.0, 32.0, 37.0, 20.2, 37.0),
            "60-64": (32.862011410271954, 37.0, 32.0, 37.0, 14.8, 37.0),
            "65-69": (32.82850300183282, 37.0, 32.0, 37.0, 16.6, 37.0),
            "70-74": (32.644303952777456, 37.0, 32.0, 37.0, 14.8, 37.0),
            "75-79": (32.2794226341944, 37.0, 32.0, 37.0, 13.0, 37.0),
            "80-84": (32.02883301567762, 37.0, 31.0, 37.0, 13.0, 37.0),
            "85-89": (32.09531805695, 37.0, 32.0, 37.0, 13.0, 37.0),
            "90-94": (31.869907780477558, 37.0, 31.0, 37.0, 13.0, 37.0),
            "95-99": (31.378415885435874, 37.0, 27.0, 37.0, 13.0, 37.0),
            "100-104": (31.2977843612584, 37.0, 27.0, 37.0, 13.0, 37.0),
            "105-109": (31.24861613951408, 37.0, 27.0, 37.0, 13.0, 37.0),
            "110-114": (31.210047703027044, 37.0, 27.0, 37.0, 13.0, 37.0),
            "115-119": (30.842717001054133, 37.0, 27.0, 37.0, 13.0, 37.0),
            "120-124": (29.900992211217265, 35.0, 25.0, 37.0, 13.0, 37.0),
            "125-129": (29.81284300860516, 35.0, 25.0, 37.0, 13.0, 37.0),
            "130-134": (29.945623153074546, 36.0, 25.0, 37.0, 13.0, 37.0),
            "135-139": (28.87727454999897, 33.0, 22.0, 37.0, 13.0, 37.0),
            "140-144": (28.850065465219757, 33.0, 23.0, 37.0, 13.0, 37.0),
            "145-149": (29.49047171660657, 35.0, 24.0, 37.0, 13.0, 37.0),
            "150-151": (31.009893882646693, 32.0, 27.0, 37.0, 17.5, 37.0),
        },
        per_base_content={
            "1": (51.1, 14.19, 6.419999999999999, 28.29),
            "2": (28.032803280328032, 15.271527152715272, 33.53335333533353, 23.162316231623162),
            "3": (24.13, 21.26, 26.86, 27.750000000000004),
            "4": (26.91, 24.64, 23.93, 24.52),
            "5": (25.790000000000003, 30.91, 24.88, 18.42),
            "6": (25.72, 32.09, 24.51, 17.68),
            "7": (17.79, 26.979999999999997, 39.6, 15.629999999999999),
            "8": (19.02, 25.480000000000004, 32.1, 23.400000000000002),
            "9": (20.36, 24.25, 34.89, 20.5),
            "10-14": (23.122, 28.236, 27.232, 21.41),
            "15-19": (23.214000000000002, 27.604, 27.55, 21.632),
            "20-24": (23.47, 27.132, 27.698, 21.7),
            "25-29": (23.064, 27.418, 27.26, 22.258),
            "30-34": (22.972918916756672, 27.891115644625785, 26.817072682907316, 22.31889275571023),
            "35-39": (22.669627140342456, 27.110337654024647, 27.42438790206433, 22.79564730356857),
            "40-44": (22.99839871897518, 27.11369095276221, 26.939551641313052, 22.94835868694956),
            "45-49": (23.307156022117155, 27.77466143120442, 26.8030290888693, 22.115153457809118),
            "50-54": (23.291022478894703, 27.419839980749565, 27.28949848603341, 21.999639054322326),
            "55-59": (22.51641006082261, 27.641166670012247, 27.091153622257462, 22.751269646907684),
            "60-64": (23.33192440070044, 27.389650383430954, 26.648954370710303, 22.629470845158302),
            "65-69": (23.255155681358673, 27.18156085725839, 27.100687424181157, 22.46259603720178),
            "70-74": (23.19702753187688, 27.190773978721676, 27.21716884593519, 22.395029643466255),
            "75-79": (22.380494982730784, 27.74519220943778, 27.326234902209233, 22.5480779056222),
            "80-84": (22.81689559872953, 27.64303097801427, 27.236728127706968, 22.30334529554923),
            "85-89": (23.19989982051175, 27.388654672955713, 26.96706599323788, 22.444379513294653),
            "90-94": (23.13618132043038, 27.78166847053331, 26.943401031387282, 22.138749177649032),
            "95-99": (23.01963585979953, 27.416596306639825, 27.338659046134527, 22.225108787426123),
            "100-104": (22.850724025179616, 26.91683163912183, 27.786551593745134, 22.445892741953422),
            "105-109": (23.254899238795957, 27.785104463108212, 26.75088498646491, 22.20911131163092),
            "110-114": (23.227306863053855, 27.151820538288234, 27.486130962474864, 22.134741636183048),
            "115-119": (22.020352572339004, 27.83831011975125, 27.6404378886776, 22.500899419232155),
            "120-124": (22.559807302786446, 27.494936223791537, 27.735807740734657, 22.20944873268736),
            "125-129": (22.998085701663967, 27.395081725813576, 27.29494919746724, 22.31188337505522),
            "130-134": (22.633508688028055, 28.244858919177428, 26.596524788777298, 22.525107604017215),
            "135-139": (22.767099567099567, 27.79220779220779, 27.078787878787878, 22.36190476190476),
            "140-144": (22.54506731573743, 27.983570396288126, 27.504373621358486, 21.966988666615958),
            "145-149": (23.130169786678277, 26.32999564649543, 28.127993034392684, 22.41184153243361),
            "150-151": (24.04258973037953, 8.363386570496308, 36.93972179289026, 30.6543019062339),
        },
        per_sequence_quality={
            17: 1,
            18: 5,
            19: 12,
            20: 25,
            21: 53,
            22: 94,
            23: 102,
            24: 146,
            25: 191,
            26: 239,
            27: 280,
            28: 346,
            29: 417,
            30: 574,
            31: 814,
            32: 1192,
            33: 1808,
            34: 2155,
            35: 1425,
            36: 121,
        },
    ),
    "samples/rprsv-paired-nextseq/paired_2.fq.gz": FastqcFigures(
        encoding="Sanger / Illumina 1.9",
        count=10000,
        length=(36, 151),
        gc=45,
        groups=[
            "1",
            "2",
            "3",
            "4",
            "5",
            "6",
            "7",
            "8",
            "9",
            "10-14",
            "15-19",
            "20-24",
            "25-29",
            "30-34",
            "35-39",
            "40-44",
            "45-49",
            "50-54",
            "55-59",
            "60-64",
            "65-69",
            "70-74",
            "75-79",
            "80-84",
            "85-89",
            "90-94",
            "95-99",
            "100-104",
            "105-109",
            "110-114",
            "115-119",
            "120-124",
            "125-129",
            "130-134",
            "135-139",
            "140-144",
            "145-149",
            "150-151",
        ],
        per_base_quality={
            "1": (29.3841, 32.0, 27.0, 32.0, 27.0, 32.0),
            "9": (33.0545, 37.0, 37.0, 37.0, 13.0, 37.0),
            "10-14": (33.03748, 37.0, 33.0, 37.0, 16.6, 37.0),
            "60-64": (31.88983898821719, 37.0, 32.0, 37.0, 13.0, 37.0),
            "150-151": (29.710861245502265, 32.0, 24.5, 37.0, 17.5, 37.0),
        },
        per_base_content={
            "1": (41.77671068427371, 22.95918367346939, 9.183673469387756, 26.080432172869152),
            "9": (22.220000000000002, 25.25, 28.43, 24.099999999999998),
            "10-14": (23.164, 29.168, 24.41, 23.258000000000003),
            "60-64": (22.745351396095376, 29.379580464759442, 25.571864085118413, 22.30320405402677),
            "150-151": (27.07000548345824, 7.896179857430086, 33.55876439407787, 31.475050265033815),
        },
        per_sequence_quality={
            11: 2,
            12: 4,
            13: 14,
            14: 26,
            15: 33,
            16: 40,
            17: 43,
            18: 46,
            19: 60,
            20: 88,
            21: 114,
            22: 118,
            23: 144,
            24: 161,
            25: 220,
            26: 260,
            27: 302,
            28: 380,
            29: 498,
            30: 651,
            31: 874,
            32: 1266,
            33: 1727,
            34: 1920,
            35: 932,
            36: 77,
        },
    ),
    "samples/glrav1-grapevine-125reads.fq.gz": FastqcFigures(
        encoding="Sanger / Illumina 1.9",
        count=125,
        length=(101, 101),
        gc=46,
        groups=[
            "1",
            "2",
            "3",
            "4",
            "5",
            "6",
            "7",
            "8",
            "9",
            "10-11",
            "12-13",
            "14-15",
            "16-17",
            "18-19",
            "20-21",
            "22-23",
            "24-25",
            "26-27",
            "28-29",
            "30-31",
            "32-33",
            "34-35",
            "36-37",
            "38-39",
            "40-41",
            "42-43",
            "44-45",
            "46-47",
            "48-49",
            "50-51",
            "52-53",
            "54-55",
            "56-57",
            "58-59",
            "60-61",
            "62-63",
            "64-65",
            "66-67",
            "68-69",
            "70-71",
            "72-73",
            "74-75",
            "76-77",
            "78-79",
            "80-81",
            "82-83",
            "84-85",
            "86-87",
            "88-89",
            "90-91",
            "92-93",
            "94-95",
            "96-97",
            "98-99",
            "100-101",
        ],
        per_base_quality={
            "1": (22.184, 33.0, 2.0, 34.0, 2.0, 34.0),
            "9": (37.8, 39.0, 39.0, 39.0, 35.0, 39.0),
            "10-11": (38.111999999999995, 39.0, 39.0, 39.0, 35.0, 39.0),
            "46-47": (37.84, 40.0, 36.0, 41.0, 31.0, 41.0),
            "100-101": (25.98, 33.5, 24.0, 35.0, 2.0, 35.0),
        },
        per_base_content={
            "1": (49.382716049382715, 11.11111111111111, 4.938271604938271, 34.5679012345679),
            "9": (43.2, 16.0, 26.400000000000002, 14.399999999999999),
            "10-11": (29.599999999999998, 38.0, 18.0, 14.399999999999999),
            "46-47": (28.4, 22.8, 18.8, 30.0),
            "100-101": (27.6, 30.0, 20.8, 21.6),
        },
        per_sequence_quality={
            16: 1,
            17: 0,
            18: 1,
            19: 0,
            20: 2,
            21: 0,
            22: 1,
            23: 1,
            24: 4,
            25: 1,
            26: 2,
            27: 6,
            28: 6,
            29: 2,
            30: 2,
            31: 1,
            32: 3,
            33: 2,
            34: 4,
            35: 14,
            36: 20,
            37: 32,
            38: 15,
            39: 5,
        },
    ),
    "quality/all_n.fastq.gz": FastqcFigures(
        encoding="Sanger / Illumina 1.9",
        count=200,
        length=(40, 40),
        gc=49,
        groups=ungrouped(40),
        per_base_quality={
            "1": (37.455, 38.0, 36.0, 40.0, 34.0, 40.0),
            "9": (34.12, 34.0, 32.0, 36.0, 30.0, 38.0),
            "10": (33.925, 34.0, 32.0, 36.0, 30.0, 38.0),
            "21": (28.975, 29.0, 27.0, 31.0, 25.0, 33.0),
            "40": (20.02, 20.0, 18.0, 22.0, 16.0, 23.0),
        },
        per_base_content={
            "1": (27.500000000000004, 21.5, 25.0, 26.0),
            "9": (25.628140703517587, 24.120603015075375, 26.633165829145728, 23.618090452261306),
            "10": (26.767676767676768, 22.22222222222222, 22.727272727272727, 28.28282828282828),
            "19": (28.999999999999996, 25.0, 24.0, 22.0),
            "20": (NAN, NAN, NAN, NAN),
            "21": (26.13065326633166, 20.100502512562816, 28.14070351758794, 25.628140703517587),
            "40": (25.125628140703515, 25.628140703517587, 22.613065326633166, 26.633165829145728),
        },
        per_sequence_quality={
            27: 2,
            28: 107,
            29: 89,
            30: 2,
        },
    ),
    "quality/binned.fastq.gz": FastqcFigures(
        encoding="Sanger / Illumina 1.9",
        count=400,
        length=(150, 150),
        gc=50,
        groups=[
            "1",
            "2",
            "3",
            "4",
            "5",
            "6",
            "7",
            "8",
            "9",
            "10-14",
            "15-19",
            "20-24",
            "25-29",
            "30-34",
            "35-39",
            "40-44",
            "45-49",
            "50-54",
            "55-59",
            "60-64",
            "65-69",
            "70-74",
            "75-79",
            "80-84",
            "85-89",
            "90-94",
            "95-99",
            "100-104",
            "105-109",
            "110-114",
            "115-119",
            "120-124",
            "125-129",
            "130-134",
            "135-139",
            "140-144",
            "145-149",
            "150",
        ],
        per_base_quality={
            "1": (37.6475, 38.0, 36.0, 40.0, 34.0, 40.0),
            "9": (36.8225, 37.0, 35.0, 39.0, 33.0, 40.0),
            "10-14": (36.451, 36.6, 34.8, 38.8, 32.8, 40.0),
            "60-64": (30.6515, 30.8, 28.8, 32.8, 26.6, 34.4),
            "150": (19.7575, 20.0, 18.0, 22.0, 16.0, 24.0),
        },
        per_base_content={
            "1": (30.15075376884422, 23.366834170854272, 25.125628140703515, 21.35678391959799),
            "9": (21.772151898734176, 26.582278481012654, 26.83544303797468, 24.81012658227848),
            "10-14": (24.547283702213278, 24.698189134808853, 26.307847082494966, 24.446680080482896),
            "60-64": (27.263581488933603, 24.748490945674046, 24.346076458752517, 23.641851106639837),
            "150": (26.0, 24.0, 27.750000000000004, 22.25),
        },
        per_sequence_quality={
            28: 229,
            29: 171,
        },
    ),
    "quality/unbinned.fastq.gz": FastqcFigures(
        encoding="Sanger / Illumina 1.9",
        count=400,
        length=(75, 75),
        gc=49,
        groups=ungrouped(75),
        per_base_quality={
            "1": (37.735, 38.0, 36.0, 40.0, 34.0, 40.0),
            "9": (36.0825, 36.0, 34.0, 38.0, 32.0, 40.0),
            "10": (35.61, 36.0, 33.0, 38.0, 32.0, 40.0),
            "38": (29.015, 29.0, 27.0, 31.0, 25.0, 33.0),
            "75": (20.1675, 20.0, 18.0, 22.0, 16.0, 24.0),
        },
        per_base_content={
            "1": (23.79746835443038, 25.31645569620253, 25.063291139240505, 25.82278481012658),
            "9": (26.884422110552762, 27.1356783919598, 24.87437185929648, 21.105527638190953),
            "10": (21.662468513853906, 25.188916876574307, 26.700251889168765, 26.448362720403022),
            "38": (27.819548872180448, 19.548872180451127, 25.31328320802005, 27.31829573934837),
            "75": (22.807017543859647, 27.819548872180448, 21.052631578947366, 28.32080200501253),
        },
        per_sequence_quality={
            27: 1,
            28: 216,
            29: 183,
        },
    ),
    "quality/variable.fastq": FastqcFigures(
        encoding="Sanger / Illumina 1.9",
        count=300,
        length=(30, 75),
        gc=49,
        groups=ungrouped(75),
        per_base_quality={
            "1": (37.49, 38.0, 36.0, 40.0, 34.0, 40.0),
            "9": (33.78333333333333, 34.0, 32.0, 36.0, 30.0, 38.0),
            "10": (33.29333333333334, 33.0, 31.0, 36.0, 29.0, 37.0),
            "30": (23.106666666666666, 22.0, 19.0, 27.0, 17.0, 30.0),
            "31": (28.93, NAN, NAN, NAN, NAN, NAN),
            "38": (26.96, NAN, NAN, NAN, NAN, NAN),
            "75": (19.725, NAN, NAN, NAN, NAN, NAN),
        },
        per_base_content={
            "1": (27.09030100334448, 27.09030100334448, 22.74247491638796, 23.076923076923077),
            "9": (23.745819397993312, 23.076923076923077, 27.759197324414714, 25.418060200668897),
            "10": (18.06020066889632, 25.75250836120401, 30.100334448160538, 26.08695652173913),
            "30": (25.0, 22.0, 27.666666666666668, 25.333333333333336),
            "31": (26.0, 25.0, 19.0, 30.0),
            "38": (26.0, 25.0, 22.0, 27.0),
            "75": (30.0, 32.5, 17.5, 20.0),
        },
        per_sequence_quality={
            27: 6,
            28: 150,
            29: 135,
            30: 9,
        },
    ),
    "synthetic": FastqcFigures(
        encoding="Illumina 1.5",
        count=300,
        length=(0, 1000),
        gc=51,
        groups=[
            "1",
            "2",
            "3",
            "4",
            "5",
            "6",
            "7",
            "8",
            "9",
            "10-19",
            "20-39",
            "40-59",
            "60-79",
            "80-99",
            "100-119",
            "120-139",
            "140-159",
            "160-179",
            "180-199",
            "200-219",
            "220-239",
            "240-259",
            "260-279",
            "280-299",
            "300-319",
            "320-339",
            "340-359",
            "360-379",
            "380-399",
            "400-419",
            "420-439",
            "440-459",
            "460-479",
            "480-499",
            "500-519",
            "520-539",
            "540-559",
            "560-579",
            "580-599",
            "600-619",
            "620-639",
            "640-659",
            "660-679",
            "680-699",
            "700-719",
            "720-739",
            "740-759",
            "760-779",
            "780-799",
            "800-819",
            "820-839",
            "840-859",
            "860-879",
            "880-899",
            "900-919",
            "920-939",
            "940-959",
            "960-979",
            "980-999",
            "1000",
        ],
        per_base_quality={
            "1": (21.03010033444816, 21.0, 11.0, 31.0, 5.0, 37.0),
            "9": (21.07773851590106, 21.0, 11.0, 31.0, 5.0, 37.0),
            "10-19": (20.96551137107773, 21.1, 11.0, 30.6, 5.0, 36.3),
            "100-119": (20.915065640868523, 20.5, 11.0, 30.5, 5.0, 36.5),
            "120-139": (21.04477341808967, NAN, NAN, NAN, NAN, NAN),
            "420-439": (19.94, NAN, NAN, NAN, NAN, NAN),
            "1000": (24.8, NAN, NAN, NAN, NAN, NAN),
        },
        per_base_content={
            "1": (25.10460251046025, 25.10460251046025, 24.686192468619247, 25.10460251046025),
            "9": (24.669603524229075, 25.55066079295154, 25.11013215859031, 24.669603524229075),
            "10-19": (25.057365764111978, 25.195043597980728, 24.873795318953647, 24.873795318953647),
            "100-119": (23.94160583941606, 25.985401459854014, 24.306569343065693, 25.76642335766423),
            "120-139": (23.04635761589404, 26.490066225165563, 23.311258278145697, 27.1523178807947),
            "420-439": (0.0, 33.33333333333333, 0.0, 66.66666666666666),
            "1000": (0.0, 0.0, 0.0, 100.0),
        },
        per_sequence_quality={
            9: 1,
            10: 0,
            11: 0,
            12: 0,
            13: 1,
            14: 1,
            15: 0,
            16: 3,
            17: 0,
            18: 5,
            19: 37,
            20: 92,
            21: 92,
            22: 55,
            23: 3,
            24: 1,
            25: 2,
            26: 1,
            27: 0,
            28: 0,
            29: 2,
            30: 1,
            31: 0,
            32: 0,
            33: 1,
            34: 0,
            35: 0,
            36: 0,
            37: 1,
        },
    ),
}


@pytest.fixture(scope="module")
def synthetic_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("synthetic") / "synthetic.fastq"
    path.write_bytes(synthetic_reads())
    return path


def path_of(name: str, synthetic_path: Path) -> Path:
    return synthetic_path if name == "synthetic" else DATA / name


def same_numbers(mine, theirs) -> bool:
    """Exact equality (FastQC prints doubles that read back exactly), NaN equal to NaN."""
    return len(mine) == len(theirs) and all(
        (math.isnan(a) and math.isnan(b)) or a == b for a, b in zip(mine, theirs, strict=False)
    )


@pytest.fixture(scope="module")
def reports(synthetic_path):
    return {name: fastqc_report(path_of(name, synthetic_path)) for name in FASTQC}


def test_doctests_pass():
    assert doctest.testmod(quality).failed == 0


@pytest.mark.parametrize("name", list(FASTQC))
def test_basic_statistics_match_fastqc(name, reports):
    report, figures = reports[name], FASTQC[name]
    assert report.encoding == figures.encoding
    assert report.count == figures.count
    assert report.length == figures.length
    assert report.gc == figures.gc


@pytest.mark.parametrize("name", list(FASTQC))
def test_position_groups_match_fastqc(name, reports):
    assert reports[name].group_labels() == FASTQC[name].groups


@pytest.mark.parametrize("name", list(FASTQC))
def test_per_base_quality_matches_fastqc(name, reports):
    report = reports[name]
    rows = dict(zip(report.group_labels(), report.per_base_quality.tolist(), strict=False))
    for label, expected in FASTQC[name].per_base_quality.items():
        assert same_numbers(rows[label], expected), (label, rows[label], expected)


@pytest.mark.parametrize("name", list(FASTQC))
def test_per_base_content_matches_fastqc(name, reports):
    report = reports[name]
    rows = dict(zip(report.group_labels(), report.per_base_content.tolist(), strict=False))
    for label, expected in FASTQC[name].per_base_content.items():
        assert same_numbers(rows[label], expected), (label, rows[label], expected)


@pytest.mark.parametrize("name", list(FASTQC))
def test_per_sequence_quality_matches_fastqc(name, reports):
    assert dict(reports[name].per_sequence_quality) == FASTQC[name].per_sequence_quality


@pytest.mark.parametrize("name", ["samples/rprsv-paired-nextseq/paired_1.fq.gz", "synthetic"])
def test_block_size_does_not_change_the_figures(name, reports, synthetic_path):
    small = fastqc_report(path_of(name, synthetic_path), block_bytes=5000)
    whole = reports[name]
    assert small.count == whole.count and small.gc == whole.gc
    assert np.array_equal(small.per_base_quality, whole.per_base_quality, equal_nan=True)
    assert np.array_equal(small.per_base_content, whole.per_base_content, equal_nan=True)
    assert small.per_sequence_quality == whole.per_sequence_quality


def test_gzipped_and_plain_reads_give_the_same_report(tmp_path, reports):
    path = tmp_path / "variable.fastq.gz"
    path.write_bytes(gzip.compress((DATA / "quality" / "variable.fastq").read_bytes()))
    report = fastqc_report(path)
    assert np.array_equal(report.per_base_quality, reports["quality/variable.fastq"].per_base_quality, equal_nan=True)


def test_gzip_of_several_members_reads_like_one(tmp_path, reports):
    # bgzip and concatenated lanes write one gzip member after another.
    text = (DATA / "quality" / "variable.fastq").read_bytes()
    records = text.splitlines(keepends=True)
    middle = 4 * (len(records) // 8)
    path = tmp_path / "members.fastq.gz"
    path.write_bytes(gzip.compress(b"".join(records[:middle])) + gzip.compress(b"".join(records[middle:])))
    report = fastqc_report(path)
    expected = reports["quality/variable.fastq"]
    assert report.count == expected.count == 300
    assert np.array_equal(report.per_base_quality, expected.per_base_quality, equal_nan=True)
    assert np.array_equal(report.per_base_content, expected.per_base_content, equal_nan=True)


def test_truncated_gzip_names_the_first_missing_record(tmp_path):
    source = (DATA / "samples" / "example-paired-50bp" / "reads_1.fq.gz").read_bytes()
    path = tmp_path / "reads_1.fq.gz"
    path.write_bytes(source[: len(source) // 2])
    # Independently: the whole records a decompressor can still recover from the cut file.
    whole_records = zlib.decompressobj(wbits=31).decompress(source[: len(source) // 2]).count(b"\n") // 4
    assert 0 < whole_records < 25000
    with pytest.raises(
        ValueError, match=rf"reads_1\.fq\.gz: gzip data is truncated or corrupt at record {whole_records + 1} "
    ):
        quality_of_files([path])


def test_corrupt_gzip_names_the_record_where_the_reads_break(tmp_path):
    source = bytearray((DATA / "samples" / "rprsv-paired-nextseq" / "paired_1.fq.gz").read_bytes())
    start = len(source) // 2
    source[start : start + 8] = bytes(8)
    path = tmp_path / "paired_1.fq.gz"
    path.write_bytes(bytes(source))
    with pytest.raises(ValueError) as error:
        quality_of_files([path])
    # The same message as validation alone gives, which reads through zlib.
    with pytest.raises(ValueError) as alone:
        count_records(path)
    assert str(error.value) == str(alone.value)
    assert re.search(r"paired_1\.fq\.gz: record \d+ \(line \d+\)", str(error.value))


@pytest.mark.parametrize(
    "length, last_groups",
    [
        (75, ["74", "75"]),
        (76, ["74-75", "76"]),
        (151, ["145-149", "150-151"]),
        (1000, ["980-999", "1000"]),
    ],
)
def test_base_groups_edges(length, last_groups):
    labels = [str(a) if a == b else f"{a}-{b}" for a, b in base_groups(length)]
    assert labels[-2:] == last_groups
    assert len(labels) <= 75


# The document, laid out as Virtool's parse_fastqc did, with FastQC's own decimals.


def test_single_file_document_expands_groups_with_fastqc_decimals():
    name = "samples/glrav1-grapevine-125reads.fq.gz"
    figures = FASTQC[name]
    document = quality_of_files([DATA / name])

    assert document["count"] == 125
    assert document["encoding"] == "Sanger / Illumina 1.9"
    assert document["gc"] == 46.0
    assert document["length"] == [101, 101]
    assert len(document["bases"]) == len(document["composition"]) == 101
    # Group "10-11" becomes rows for positions 10 and 11, each FastQC's row as printed.
    assert document["bases"][9] == document["bases"][10] == list(figures.per_base_quality["10-11"])
    assert document["bases"][9][0] == 38.111999999999995  # Virtool kept 38
    assert document["composition"][9] == list(figures.per_base_content["10-11"])
    assert document["bases"][0] == list(figures.per_base_quality["1"])
    assert document["sequences"] == [figures.per_sequence_quality.get(score, 0) for score in range(50)]


def test_nan_rows_take_their_first_number():
    document = quality_of_files([DATA / "quality" / "variable.fastq"])
    # FastQC row 30: 23.106666666666666 22.0 19.0 27.0 17.0 30.0
    assert document["bases"][29] == [23.106666666666666, 22.0, 19.0, 27.0, 17.0, 30.0]
    # FastQC row 31: 28.93 NaN NaN NaN NaN NaN (only 100 reads reach position 31)
    assert document["bases"][30] == [28.93] * 6
    assert document["bases"][74] == [19.725] * 6
    assert document["length"] == [30, 75]


def test_composition_keeps_fastqc_decimals_and_a_row_of_only_n_becomes_zeros():
    document = quality_of_files([DATA / "quality" / "all_n.fastq.gz"])
    assert document["composition"][19] == [0.0, 0.0, 0.0, 0.0]
    # Virtool's int(value.split(".")[0]) made 28.999999999999996 a 28; rows now sum to 100.
    assert document["composition"][18] == [28.999999999999996, 25.0, 24.0, 22.0]
    assert all(abs(sum(row) - 100) < 1e-9 for row in document["composition"] if any(row))


def test_paired_document_averages_and_sums_the_mates():
    folder = DATA / "samples" / "example-paired-50bp"
    first = FASTQC["samples/example-paired-50bp/reads_1.fq.gz"]
    second = FASTQC["samples/example-paired-50bp/reads_2.fq.gz"]
    document = quality_of_files([folder / "reads_1.fq.gz", folder / "reads_2.fq.gz"])

    assert document["count"] == 50000
    assert document["gc"] == 46.5  # (46 + 47) / 2
    assert document["length"] == [50, 50]
    assert document["encoding"] == "Sanger / Illumina 1.9"
    for label in ("1", "9", "26", "50"):
        row = int(label) - 1
        assert document["bases"][row] == [
            (a + b) / 2 for a, b in zip(first.per_base_quality[label], second.per_base_quality[label], strict=True)
        ]
        assert document["composition"][row] == [
            (a + b) / 2 for a, b in zip(first.per_base_content[label], second.per_base_content[label], strict=True)
        ]
    assert document["sequences"] == [
        first.per_sequence_quality.get(q, 0) + second.per_sequence_quality.get(q, 0) for q in range(50)
    ]


def test_paired_rprsv_document():
    folder = DATA / "samples" / "rprsv-paired-nextseq"
    document = quality_of_files([folder / "paired_1.fq.gz", folder / "paired_2.fq.gz"])
    assert document["count"] == 20000
    assert document["length"] == [36, 151]
    assert document["gc"] == 45.0
    assert len(document["bases"]) == len(document["composition"]) == 151
    assert sum(document["sequences"]) == 20000


def test_mates_of_unequal_length_keep_the_longer_rows():
    short = {
        "count": 1,
        "encoding": "e",
        "gc": 40.0,
        "length": [2, 2],
        "bases": [[30] * 6, [20] * 6],
        "composition": [[25] * 4] * 2,
        "sequences": [0, 1],
    }
    long = {
        "count": 1,
        "encoding": "e",
        "gc": 50.0,
        "length": [3, 3],
        "bases": [[32] * 6, [22] * 6, [10] * 6],
        "composition": [[25] * 4] * 3,
        "sequences": [1, 0, 2],
    }
    merged = merge_quality_documents(short, long)
    assert merged["bases"] == [[31.0] * 6, [21.0] * 6, [10] * 6]
    assert merged["sequences"] == [1, 1, 2]
    assert merged["length"] == [2, 3] and merged["gc"] == 45.0 and merged["count"] == 2


def test_mates_with_different_counts_are_refused(tmp_path):
    folder = DATA / "samples" / "rprsv-paired-nextseq"
    lines = gzip.decompress((folder / "paired_2.fq.gz").read_bytes()).splitlines()
    short = tmp_path / "paired_2.fq.gz"
    short.write_bytes(gzip.compress(b"\n".join(lines[:-8]) + b"\n"))
    with pytest.raises(ValueError, match=r"paired_2\.fq\.gz ran out first, at record 9999"):
        quality_of_files([folder / "paired_1.fq.gz", short])


def test_one_or_two_files_only():
    with pytest.raises(ValueError, match="one or two read files, not 3"):
        quality_of_files([DATA / "quality" / "variable.fastq"] * 3)


def test_reads_without_any_base_are_refused(tmp_path):
    path = tmp_path / "empty_reads.fq"
    path.write_bytes(b"@r1\n\n+\n\n@r2\n\n+\n\n")
    with pytest.raises(ValueError, match="every read is empty"):
        quality_of_files([path])


def test_high_quality_scores_extend_the_sequence_bins(tmp_path):
    path = tmp_path / "hifi.fq"
    # Q93 ('~' in Phred+33), past Virtool's 50 bins; the Q0 read fixes the encoding.
    path.write_bytes(b"@r1\nACGT\n+\n~~~~\n@r2\nACGT\n+\n!!!!\n")
    document = quality_document(fastqc_report(path))
    assert len(document["sequences"]) == 94
    assert document["sequences"][0] == document["sequences"][93] == 1


def test_binary_data_fails_at_its_first_byte_without_reading_on(tmp_path):
    path = tmp_path / "bomb.fq.gz"
    path.write_bytes(gzip.compress(b"\0" * (16 << 20), compresslevel=1))  # no line break to stop at
    started = time.monotonic()
    with pytest.raises(ValueError, match=r"bomb\.fq\.gz: record 1 \(line 1\): header should start with '@'"):
        quality_of_files([path])
    assert time.monotonic() - started < 2


def test_a_record_that_never_ends_is_refused_past_the_longest_read(tmp_path, monkeypatch):
    monkeypatch.setattr(fastq, "LONGEST_RECORD_BYTES", 1 << 20)  # the same rule at 1 MiB, to keep the test short
    path = tmp_path / "endless.fq.gz"
    path.write_bytes(gzip.compress(b"@r1\nACGT\n+\nIIII\n@r2\n" + b"A" * (3 << 20), compresslevel=1))
    with pytest.raises(ValueError, match=r"endless\.fq\.gz: record 2 \(line 5\) runs past 1 MiB without ending"):
        quality_of_files([path])
