-- Budgets, reservations, the append-only ledger and events. Times are Unix
-- microseconds (BIGINT) so both stores share one representation.
CREATE TABLE budget_budgets (
    tenant          TEXT     NOT NULL,
    scope_kind      SMALLINT NOT NULL CHECK (scope_kind IN (1, 2)),
    subject         TEXT     NOT NULL,
    period          SMALLINT NOT NULL CHECK (period BETWEEN 1 AND 4),
    limit_micros    BIGINT   NOT NULL CHECK (limit_micros >= 0),
    thresholds      TEXT     NOT NULL,
    time_zone       TEXT     NOT NULL,
    period_start    BIGINT   NOT NULL,
    spent_micros    BIGINT   NOT NULL,
    reserved_micros BIGINT   NOT NULL CHECK (reserved_micros >= 0),
    fired_percent   INTEGER  NOT NULL,
    hard_stopped    BOOLEAN  NOT NULL,
    updated_at      BIGINT   NOT NULL,
    PRIMARY KEY (tenant, scope_kind, subject)
);

CREATE TABLE budget_reservations (
    id              TEXT     PRIMARY KEY,
    tenant          TEXT     NOT NULL,
    idempotency_key TEXT     NOT NULL,
    request_hash    TEXT     NOT NULL,
    scope_tenant    BOOLEAN  NOT NULL,
    scope_user      TEXT     NOT NULL,
    held_tenant     BOOLEAN  NOT NULL,
    held_user       BOOLEAN  NOT NULL,
    amount_micros   BIGINT   NOT NULL CHECK (amount_micros > 0),
    actual_micros   BIGINT   NOT NULL CHECK (actual_micros >= 0),
    state           SMALLINT NOT NULL CHECK (state BETWEEN 1 AND 4),
    cost_kind       SMALLINT NOT NULL,
    model           TEXT     NOT NULL,
    run_id          TEXT     NOT NULL,
    created_at      BIGINT   NOT NULL,
    expires_at      BIGINT   NOT NULL,
    settled_at      BIGINT   NOT NULL,
    UNIQUE (tenant, idempotency_key)
);
CREATE INDEX budget_reservations_held ON budget_reservations (expires_at) WHERE state = 1;
CREATE INDEX budget_reservations_held_scope ON budget_reservations (tenant, scope_user) WHERE state = 1;

CREATE TABLE budget_ledger (
    seq             BIGSERIAL PRIMARY KEY,
    tenant          TEXT     NOT NULL,
    reservation_id  TEXT     NOT NULL,
    entry           SMALLINT NOT NULL CHECK (entry BETWEEN 1 AND 3),
    scope_tenant    BOOLEAN  NOT NULL,
    scope_user      TEXT     NOT NULL,
    cost_kind       SMALLINT NOT NULL,
    model           TEXT     NOT NULL,
    amount_micros   BIGINT   NOT NULL CHECK (amount_micros >= 0),
    released_micros BIGINT   NOT NULL CHECK (released_micros >= 0),
    at              BIGINT   NOT NULL
);
CREATE INDEX budget_ledger_tenant_at ON budget_ledger (tenant, at);
CREATE INDEX budget_ledger_user_at ON budget_ledger (tenant, scope_user, at);

-- The ledger is append-only: the database itself refuses changes.
CREATE FUNCTION budget_ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'budget_ledger is append-only';
END;
$$;
CREATE TRIGGER budget_ledger_no_update BEFORE UPDATE OR DELETE ON budget_ledger
    FOR EACH ROW EXECUTE FUNCTION budget_ledger_append_only();

CREATE TABLE budget_events (
    seq             BIGSERIAL PRIMARY KEY,
    id              TEXT     NOT NULL UNIQUE,
    tenant          TEXT     NOT NULL,
    kind            SMALLINT NOT NULL,
    scope_kind      SMALLINT NOT NULL,
    subject         TEXT     NOT NULL,
    threshold       INTEGER  NOT NULL,
    amount_micros   BIGINT   NOT NULL,
    reservation_id  TEXT     NOT NULL,
    message         TEXT     NOT NULL,
    at              BIGINT   NOT NULL
);
CREATE INDEX budget_events_tenant ON budget_events (tenant, seq);
