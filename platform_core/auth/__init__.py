"""Authentication and authorisation: users, roles, API tokens, JWTs, scopes."""
