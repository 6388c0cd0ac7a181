"""The electra family (model_type "electra"): the generic encoder family over its anatomy."""

from search_spaces.encoder.anatomy import ELECTRA
from search_spaces.encoder.family import EncoderFamily

FAMILY = EncoderFamily(ELECTRA)
