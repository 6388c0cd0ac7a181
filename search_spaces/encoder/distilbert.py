"""The distilbert family (model_type "distilbert"): the generic encoder family over its anatomy."""

from search_spaces.encoder.anatomy import DISTILBERT
from search_spaces.encoder.family import EncoderFamily

FAMILY = EncoderFamily(DISTILBERT)
