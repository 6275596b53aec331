"""Adapters from other libraries' model outputs to RankSEG. Each submodule imports its library lazily, so
``import rankseg`` never pulls them in: ``from rankseg.integration import transformers``."""
