"""What a human reads: report.json and report.md, rebuilt from the study at any time."""
