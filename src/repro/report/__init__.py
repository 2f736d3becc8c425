"""The results contract: tidy rows with provenance, aggregation, claims, runtime, figures."""
