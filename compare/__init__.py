"""`make compare`: every runnable routing mode brought up in turn on this machine, measured the
same way, and drawn side by side (artifacts/compare/: report.md, PNG charts, the raw JSON)."""
