"""The stream shell around the pure core: which stage reads what (`topology`), each partition's
state and its changelog (`state`), the pure batch step (`batch`) and the consumer that drives
them (`runner`). Kafka clients come from `pipeline.kafka_io`; Faust hosts the runner
(`pipeline.app`).
"""
