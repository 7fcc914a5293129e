"""Queue names: one worker pool per queue, so each scales on its own (see the Procfile)."""

REFERENCES = "references"
INDEXES = "indexes"
SAMPLES = "samples"
SUBTRACTIONS = "subtractions"
ANALYSES = "analyses"
BLAST = "blast"
HMMS = "hmms"
MAINTENANCE = "maintenance"
WEBHOOKS = "webhooks"
ALIGNMENTS = "alignments"

ALL = (REFERENCES, INDEXES, SAMPLES, SUBTRACTIONS, ANALYSES, BLAST, HMMS, MAINTENANCE, WEBHOOKS, ALIGNMENTS)
