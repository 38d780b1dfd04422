"""Data shipped with cnnbuilder (example projects, icons); installed as cnnbuilder.resources."""
