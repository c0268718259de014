"""Publish: the run's outputs as other systems and planners read them.

- :func:`publish_tables` writes the GeoParquet 1.1 tables (buildings, vehicles,
  indicators per city, H3 cell and district) with a deterministic row order and
  provenance in the Parquet key-value metadata;
- :func:`write_manifest` writes ``manifest.json`` (config, hashes, versions,
  inputs, timings), with secrets masked;
- :func:`write_report` writes a self-contained ``report.html`` for planners and
  :func:`write_report_pdf` prints it to PDF when Chromium is installed.
"""

from baseline.core.hashing import sha256_file
from baseline.publish.manifest import read_manifest, redact_secrets, write_manifest
from baseline.publish.report import write_report
from baseline.publish.report_pdf import write_report_pdf
from baseline.publish.tables import publish_tables, read_table_provenance

__all__ = [
    "publish_tables",
    "read_manifest",
    "read_table_provenance",
    "redact_secrets",
    "sha256_file",
    "write_manifest",
    "write_report",
    "write_report_pdf",
]
