"""Running collectors on hosts. The catalog of what to run is declared data."""
