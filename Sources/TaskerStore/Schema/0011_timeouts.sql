-- A task's deadline (its template's timeout_seconds after its submit or start_at), and a
-- step's limit on waiting ENQUEUED before an attempt starts.
ALTER TABLE tasks ADD COLUMN deadline_at timestamptz;
ALTER TABLE steps ADD COLUMN schedule_to_start_seconds integer NOT NULL DEFAULT 0;

CREATE INDEX tasks_deadline ON tasks (deadline_at) WHERE deadline_at IS NOT NULL AND completed_at IS NULL;
CREATE INDEX steps_waiting_to_start ON steps (queued_at) WHERE status = 2 AND schedule_to_start_seconds > 0;
