"""The desktop GUI (PySide6). Everything Qt lives under this package; the core stays Qt-free."""
