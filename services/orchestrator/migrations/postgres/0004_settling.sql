-- What a finished step is to be charged, stored before the budget service is
-- asked to commit it; -1 while the step has not finished. A restart finds a
-- reservation with it set and completes the settlement, instead of failing a
-- run whose code ran and was paid for.
ALTER TABLE orchestrator_reservations ADD COLUMN settle_micros BIGINT NOT NULL DEFAULT -1;
