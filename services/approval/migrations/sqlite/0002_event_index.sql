-- CheckApproval and VerifyTrail read a request's newest event.
CREATE INDEX approval_events_request ON approval_events (approval_id, seq);
