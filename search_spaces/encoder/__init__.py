"""The generic encoder families: one implementation (``family.EncoderFamily``) driven by each family's
``anatomy.Anatomy``; one module per registered family (``roberta``, ``xlm_roberta``, ``distilbert``,
``electra``, ``deberta_v2``) defines its ``FAMILY``."""
