-- API keys: only a SHA-256 of each key's 256-bit secret is stored.
CREATE TABLE auth_api_keys (
	id            TEXT PRIMARY KEY,
	tenant        TEXT NOT NULL,
	subject       TEXT NOT NULL,
	roles         TEXT NOT NULL,
	secret_sha256 BYTEA NOT NULL,
	created_by    TEXT NOT NULL DEFAULT '',
	created_at    TIMESTAMPTZ NOT NULL,
	revoked_at    TIMESTAMPTZ,
	last_used_at  TIMESTAMPTZ
);
CREATE INDEX auth_api_keys_tenant ON auth_api_keys (tenant, created_at DESC);
