"""The replay shell: backfills from archives, files, captured pages or a topic's time range.

Pure parts (readers, filters, token bucket, checkpoint, safety) are plain modules with unit tests;
`runner` is the thin Kafka/offline shell around them and `archive` writes what replay reads.
"""
