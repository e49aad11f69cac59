"""Peers benchmark: the trivial job through aiokafka, Faust, Quix Streams and confluent-kafka."""
