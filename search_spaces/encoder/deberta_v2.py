"""The deberta-v2 family (model_type "deberta-v2", DeBERTa-v3 checkpoints included): the generic encoder family over its anatomy."""

from search_spaces.encoder.anatomy import DEBERTA_V2
from search_spaces.encoder.family import EncoderFamily

FAMILY = EncoderFamily(DEBERTA_V2)
