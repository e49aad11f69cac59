"""Development tools beside the runtime package: the local Kafka broker, the data sets the tests,
evaluations and benchmarks read, worker processes for tests, and the quality evaluations.

Nothing here ships in the wheel or the image; `pipeline` never imports it.
"""
