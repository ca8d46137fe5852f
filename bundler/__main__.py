"""``python -m bundler``: the same as the ``bundler`` command."""

from .cli.app import main

main()
