"""Looking inside a model: the arithmetic behind every shape (`formulas`), receptive fields
(`receptive`), images prepared as the run's data pipeline prepares them (`images`), predictions
(`predict`) and where the model looks: Grad-CAM and saliency (`explain`).

Pure functions of (graph, model, tensor) that return plain data (dataclasses, strings, numpy
arrays), so a GUI can call them from a worker process and only paint the results. `formulas` and
`receptive` are arithmetic (no torch); the others import torch lazily.
"""
