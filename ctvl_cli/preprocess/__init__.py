"""Declarative CT preprocessing: a spec from the model card, one torch engine (CPU or GPU)."""
