"""newspipe: a streaming news-and-comment pipeline on Kafka (Faust agents around a pure core)."""

__version__ = "0.1.0"
