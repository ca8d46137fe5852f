"""Where things are inside a bundle: the member names every reader and writer agrees on."""

MANIFEST_NAME = "bundle.yaml"
SOURCE_PREFIX = "src/"
MODEL_PREFIX = "models/"  # BentoML's model-store layout (bundler's store models too, in schema 1)
STORE_PREFIX = "store/"  # bundler's store models, from schema 2
HUB_PREFIX = "hub/"  # Hub files of a bundle built with --embed-hub
WHEEL_PREFIX = "wheels/"
