-- The nodes (tasker serve processes) running steps, and when each was last seen: a step whose
-- node stopped being seen is failed, retryably, by the sweeper of another.
CREATE TABLE tasker_nodes (
    node_id uuid PRIMARY KEY,
    name text NOT NULL DEFAULT '',
    started_at timestamptz NOT NULL DEFAULT now(),
    seen_at timestamptz NOT NULL DEFAULT now()
);

-- The node that dispatched a step's running attempt.
ALTER TABLE steps ADD COLUMN node_id uuid;
-- When a step was last given to the queue: the sweeper puts back one the queue lost.
ALTER TABLE steps ADD COLUMN queued_at timestamptz;
UPDATE steps SET queued_at = coalesce(last_attempted_at, now()) WHERE status = 2;

DROP INDEX steps_enqueued;
CREATE INDEX steps_enqueued ON steps (queued_at) WHERE status = 2;
CREATE INDEX steps_in_progress ON steps (node_id) WHERE status = 3;
