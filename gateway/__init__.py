"""The HTTP gateway (SPEC §6): a stateless FastAPI service over the `starter` client, with JWT auth and tenancy."""
