"""newspipe: a streaming news-and-comment pipeline on Kafka.

A pure processing core (validate, normalize, deduplicate, tag: `pipeline.core`) inside a thin
stream shell (a Faust worker hosting batch stages: `pipeline.app`, `pipeline.stream`).
"""

__version__ = "0.1.0"
