"""The xlm-roberta family (model_type "xlm-roberta"): the generic encoder family over its anatomy."""

from search_spaces.encoder.anatomy import XLM_ROBERTA
from search_spaces.encoder.family import EncoderFamily

FAMILY = EncoderFamily(XLM_ROBERTA)
