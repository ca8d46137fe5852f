"""The local model stores: bundler's own content-addressed store, and BentoML's read and written without bentoml."""
