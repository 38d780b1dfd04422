"""Exporters: the model (and its training) in forms other tools run."""
