"""Topic tagging with IPTC Media Topics: weighted term lists matched by one Aho-Corasick automaton.

Pure core (no Kafka or Faust) so the stages, the CLI, the tests and the benchmarks share one path.
"""

from pipeline.tagging.tagger import Tag, Tagger
from pipeline.tagging.taxonomy import Taxonomy

__all__ = ["Tag", "Tagger", "Taxonomy"]
