-- Approval requests, their hash-chained audit trail and each tenant's chain head.
-- Times are microseconds since the Unix epoch (UTC): one encoding for both
-- stores and for the trail's hashes.
CREATE TABLE approval_requests (
    id             TEXT PRIMARY KEY,
    tenant         TEXT NOT NULL,
    run_id         TEXT NOT NULL,
    requester      TEXT NOT NULL,
    code           TEXT NOT NULL,
    code_sha256    TEXT NOT NULL,
    policy_id      TEXT NOT NULL,
    policy_version TEXT NOT NULL,
    findings       TEXT NOT NULL,
    risk           TEXT NOT NULL,
    inputs         TEXT NOT NULL,
    state          TEXT NOT NULL CHECK (state IN ('PENDING', 'APPROVED', 'REJECTED', 'EXPIRED')),
    decided_by     TEXT NOT NULL DEFAULT '',
    reason         TEXT NOT NULL DEFAULT '',
    created_at_us  INTEGER NOT NULL,
    expires_at_us  INTEGER NOT NULL,
    decided_at_us  INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX approval_requests_list ON approval_requests (tenant, created_at_us DESC, id DESC);
CREATE INDEX approval_requests_run ON approval_requests (tenant, run_id);
CREATE INDEX approval_requests_due ON approval_requests (expires_at_us) WHERE state = 'PENDING';

CREATE TABLE approval_chain_heads (
    tenant TEXT PRIMARY KEY,
    seq    INTEGER NOT NULL,
    hash   TEXT NOT NULL
);

CREATE TABLE approval_events (
    gid            INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant         TEXT NOT NULL,
    seq            INTEGER NOT NULL,
    approval_id    TEXT NOT NULL REFERENCES approval_requests (id),
    kind           TEXT NOT NULL,
    actor          TEXT NOT NULL,
    at_us          INTEGER NOT NULL,
    reason         TEXT NOT NULL,
    run_id         TEXT NOT NULL,
    code_sha256    TEXT NOT NULL,
    policy_version TEXT NOT NULL,
    prev_hash      TEXT NOT NULL,
    hash           TEXT NOT NULL,
    UNIQUE (tenant, seq)
);
