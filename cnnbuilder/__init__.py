"""cnnbuilder: build convolutional neural networks visually and turn them into PyTorch code."""

__version__ = "0.1.0"
