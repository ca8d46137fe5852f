"""Static introspection of service files: parse with ``ast``, never import or execute."""

from __future__ import annotations

from .scanner import ModelRef, ScanResult, Service, scan, scan_files, split_target

__all__ = ["ModelRef", "ScanResult", "Service", "scan", "scan_files", "split_target"]
