-- Runs, their attempts and transitions, the money they hold, and their files.
CREATE TABLE orchestrator_runs (
	id TEXT PRIMARY KEY,
	tenant TEXT NOT NULL,
	requester TEXT NOT NULL,
	principal TEXT NOT NULL,
	state INTEGER NOT NULL,
	prompt TEXT NOT NULL DEFAULT '',
	supplied_code TEXT NOT NULL DEFAULT '',
	policy_id TEXT NOT NULL DEFAULT '',
	max_attempts INTEGER NOT NULL,
	idempotency_key TEXT NOT NULL DEFAULT '',
	approval_id TEXT NOT NULL DEFAULT '',
	failure_reason TEXT NOT NULL DEFAULT '',
	trace_id TEXT NOT NULL DEFAULT '',
	llm_micros BIGINT NOT NULL DEFAULT 0,
	compute_micros BIGINT NOT NULL DEFAULT 0,
	cancel_requested BOOLEAN NOT NULL DEFAULT FALSE,
	created_at BIGINT NOT NULL,
	updated_at BIGINT NOT NULL,
	finished_at BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX orchestrator_runs_tenant_created ON orchestrator_runs (tenant, created_at DESC, id DESC);
CREATE INDEX orchestrator_runs_state ON orchestrator_runs (state);
CREATE UNIQUE INDEX orchestrator_runs_idempotency ON orchestrator_runs (tenant, requester, idempotency_key) WHERE idempotency_key <> '';

CREATE TABLE orchestrator_run_inputs (
	run_id TEXT NOT NULL REFERENCES orchestrator_runs (id) ON DELETE CASCADE,
	position INTEGER NOT NULL,
	file_id TEXT NOT NULL,
	name TEXT NOT NULL,
	size_bytes BIGINT NOT NULL,
	sha256 TEXT NOT NULL,
	PRIMARY KEY (run_id, position)
);

CREATE TABLE orchestrator_attempts (
	run_id TEXT NOT NULL REFERENCES orchestrator_runs (id) ON DELETE CASCADE,
	number INTEGER NOT NULL,
	status TEXT NOT NULL,
	code TEXT NOT NULL DEFAULT '',
	code_sha256 TEXT NOT NULL DEFAULT '',
	explanation TEXT NOT NULL DEFAULT '',
	check_result BYTEA,
	generation_micros BIGINT NOT NULL DEFAULT 0,
	execution BYTEA,
	execution_micros BIGINT NOT NULL DEFAULT 0,
	created_at BIGINT NOT NULL,
	PRIMARY KEY (run_id, number)
);

CREATE TABLE orchestrator_transitions (
	run_id TEXT NOT NULL REFERENCES orchestrator_runs (id) ON DELETE CASCADE,
	seq INTEGER NOT NULL,
	from_state INTEGER NOT NULL,
	to_state INTEGER NOT NULL,
	message TEXT NOT NULL,
	at BIGINT NOT NULL,
	PRIMARY KEY (run_id, seq)
);

CREATE TABLE orchestrator_reservations (
	id TEXT PRIMARY KEY,
	run_id TEXT NOT NULL REFERENCES orchestrator_runs (id) ON DELETE CASCADE,
	kind TEXT NOT NULL,
	amount_micros BIGINT NOT NULL,
	created_at BIGINT NOT NULL
);
CREATE INDEX orchestrator_reservations_run ON orchestrator_reservations (run_id);

CREATE TABLE orchestrator_files (
	id TEXT PRIMARY KEY,
	tenant TEXT NOT NULL,
	owner TEXT NOT NULL,
	run_id TEXT NOT NULL DEFAULT '',
	kind TEXT NOT NULL,
	name TEXT NOT NULL,
	size_bytes BIGINT NOT NULL DEFAULT 0,
	sha256 TEXT NOT NULL DEFAULT '',
	complete BOOLEAN NOT NULL DEFAULT FALSE,
	created_at BIGINT NOT NULL
);
CREATE INDEX orchestrator_files_run ON orchestrator_files (run_id, kind);

CREATE TABLE orchestrator_file_chunks (
	file_id TEXT NOT NULL REFERENCES orchestrator_files (id) ON DELETE CASCADE,
	seq INTEGER NOT NULL,
	data BYTEA NOT NULL,
	PRIMARY KEY (file_id, seq)
);
