-- Why a run was cancelled and by whom, so a cancellation asked of one
-- replica is recorded with its reason by the replica that drives the run.
ALTER TABLE orchestrator_runs ADD COLUMN cancel_reason TEXT NOT NULL DEFAULT '';
