"""One module per operation, each a function returning a result the CLI renders."""
