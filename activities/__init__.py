"""Step handlers (Temporal activities) and the Postgres store they write to."""
