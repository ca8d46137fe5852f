"""OCI registries: references, auth, the bundle as an OCI artifact (push and pull)."""
