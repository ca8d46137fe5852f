"""The service's project on disk: settings, BentoML's build settings, source selection, ignore files, credentials."""
