"""The bundle format: ``bundle.yaml`` (schema, strict validation, digest) and the reproducible archive with its one validated member reader."""
