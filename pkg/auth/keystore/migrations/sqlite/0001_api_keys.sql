-- API keys: only a SHA-256 of each key's 256-bit secret is stored.
-- Times are Unix microseconds (UTC).
CREATE TABLE auth_api_keys (
	id            TEXT PRIMARY KEY,
	tenant        TEXT NOT NULL,
	subject       TEXT NOT NULL,
	roles         TEXT NOT NULL,
	secret_sha256 BLOB NOT NULL,
	created_by    TEXT NOT NULL DEFAULT '',
	created_at    INTEGER NOT NULL,
	revoked_at    INTEGER,
	last_used_at  INTEGER
);
CREATE INDEX auth_api_keys_tenant ON auth_api_keys (tenant, created_at DESC);
