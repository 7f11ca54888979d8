"""The optuna search: space (YAML -> define-by-run suggestions) and study (storage, budget, ask/tell)."""
