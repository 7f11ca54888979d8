"""One trial: convert (cached) -> load -> validate -> bench -> TrialOutcome."""
