"""The roberta family (model_type "roberta"): the generic encoder family over its anatomy."""

from search_spaces.encoder.anatomy import ROBERTA
from search_spaces.encoder.family import EncoderFamily

FAMILY = EncoderFamily(ROBERTA)
