"""``python -m bundler``: the same as the ``bundler`` command."""

from .cli import main

main()
