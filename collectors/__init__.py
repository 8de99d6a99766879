"""Collectors observe a run and write typed records into the run directory."""
