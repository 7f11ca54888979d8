"""Search-space YAML files, one per conversion path (navigator/paths/<name>.py)."""
