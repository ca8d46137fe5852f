"""Primitives with no bundler concept above ``model``: atomic writes, scratch files, guarded reads, walking, hashing, gzip, the archive."""
