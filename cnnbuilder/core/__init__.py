"""Qt-free core: graph document, block specs, shape inference, statistics, code generation,
project files, undoable commands and the training engine.

Nothing in this package imports PySide6 or pyqtgraph; torch is imported lazily where tensors
are needed, so the editor stays fast to start and the core stays usable headless.
"""
