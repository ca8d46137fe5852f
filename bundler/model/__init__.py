"""Pure values, no I/O: pins, the manifest and its typed parts, the bundle's layout, plain data, JSON text."""
