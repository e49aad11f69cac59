"""Topic tagging with IPTC Media Topics: weighted term lists matched by one Aho-Corasick automaton.

Pure core (no Kafka/Faust imports) so agents, tests and benches share the same code path.
"""

from pipeline.tagging.tagger import Tag, Tagger
from pipeline.tagging.taxonomy import Taxonomy

__all__ = ["Tag", "Tagger", "Taxonomy"]
