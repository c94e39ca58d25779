-- What each node last reported of its connected workers (with its liveness, every 2 s): how any
-- node lists every worker without a write per worker heartbeat.
ALTER TABLE tasker_nodes ADD COLUMN workers jsonb NOT NULL DEFAULT '[]';
