-- Budgets, reservations, the append-only ledger and events. Times are Unix
-- microseconds so both stores share one representation.
CREATE TABLE budget_budgets (
    tenant          TEXT    NOT NULL,
    scope_kind      INTEGER NOT NULL CHECK (scope_kind IN (1, 2)),
    subject         TEXT    NOT NULL,
    period          INTEGER NOT NULL CHECK (period BETWEEN 1 AND 4),
    limit_micros    INTEGER NOT NULL CHECK (limit_micros >= 0),
    thresholds      TEXT    NOT NULL,
    time_zone       TEXT    NOT NULL,
    period_start    INTEGER NOT NULL,
    spent_micros    INTEGER NOT NULL,
    reserved_micros INTEGER NOT NULL CHECK (reserved_micros >= 0),
    fired_percent   INTEGER NOT NULL,
    hard_stopped    INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    PRIMARY KEY (tenant, scope_kind, subject)
);

CREATE TABLE budget_reservations (
    id              TEXT    PRIMARY KEY,
    tenant          TEXT    NOT NULL,
    idempotency_key TEXT    NOT NULL,
    request_hash    TEXT    NOT NULL,
    scope_tenant    INTEGER NOT NULL,
    scope_user      TEXT    NOT NULL,
    held_tenant     INTEGER NOT NULL,
    held_user       INTEGER NOT NULL,
    amount_micros   INTEGER NOT NULL CHECK (amount_micros > 0),
    actual_micros   INTEGER NOT NULL CHECK (actual_micros >= 0),
    state           INTEGER NOT NULL CHECK (state BETWEEN 1 AND 4),
    cost_kind       INTEGER NOT NULL,
    model           TEXT    NOT NULL,
    run_id          TEXT    NOT NULL,
    created_at      INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL,
    settled_at      INTEGER NOT NULL,
    UNIQUE (tenant, idempotency_key)
);
CREATE INDEX budget_reservations_held ON budget_reservations (expires_at) WHERE state = 1;
CREATE INDEX budget_reservations_held_scope ON budget_reservations (tenant, scope_user) WHERE state = 1;

CREATE TABLE budget_ledger (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant          TEXT    NOT NULL,
    reservation_id  TEXT    NOT NULL,
    entry           INTEGER NOT NULL CHECK (entry BETWEEN 1 AND 3),
    scope_tenant    INTEGER NOT NULL,
    scope_user      TEXT    NOT NULL,
    cost_kind       INTEGER NOT NULL,
    model           TEXT    NOT NULL,
    amount_micros   INTEGER NOT NULL CHECK (amount_micros >= 0),
    released_micros INTEGER NOT NULL CHECK (released_micros >= 0),
    at              INTEGER NOT NULL
);
CREATE INDEX budget_ledger_tenant_at ON budget_ledger (tenant, at);
CREATE INDEX budget_ledger_user_at ON budget_ledger (tenant, scope_user, at);

-- The ledger is append-only: the database itself refuses changes.
CREATE TRIGGER budget_ledger_no_update BEFORE UPDATE ON budget_ledger
BEGIN
    SELECT RAISE(ABORT, 'budget_ledger is append-only');
END;
CREATE TRIGGER budget_ledger_no_delete BEFORE DELETE ON budget_ledger
BEGIN
    SELECT RAISE(ABORT, 'budget_ledger is append-only');
END;

CREATE TABLE budget_events (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    id              TEXT    NOT NULL UNIQUE,
    tenant          TEXT    NOT NULL,
    kind            INTEGER NOT NULL,
    scope_kind      INTEGER NOT NULL,
    subject         TEXT    NOT NULL,
    threshold       INTEGER NOT NULL,
    amount_micros   INTEGER NOT NULL,
    reservation_id  TEXT    NOT NULL,
    message         TEXT    NOT NULL,
    at              INTEGER NOT NULL
);
CREATE INDEX budget_events_tenant ON budget_events (tenant, seq);
