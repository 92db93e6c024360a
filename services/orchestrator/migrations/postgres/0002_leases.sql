-- A run is driven by one orchestrator process at a time: the owner holds a
-- lease it renews; another replica takes the run over once the lease lapses.
ALTER TABLE orchestrator_runs ADD COLUMN owner TEXT NOT NULL DEFAULT '';
ALTER TABLE orchestrator_runs ADD COLUMN lease_until BIGINT NOT NULL DEFAULT 0;
