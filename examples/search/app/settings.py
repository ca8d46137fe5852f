"""Settings shared by the example's services."""

ORG = "acme"
EMBED_MODEL = f"{ORG}/embed-small"
WEIGHTS = ["*.json", "*.safetensors"]
