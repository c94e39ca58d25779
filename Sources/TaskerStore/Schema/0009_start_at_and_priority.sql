-- A task may start later (start_at) and has a priority, 1 (first) to 5 (last). Its first
-- steps wait PENDING with next_attempt_at at start_at until then.
ALTER TABLE tasks ADD COLUMN start_at timestamptz;
ALTER TABLE tasks ADD COLUMN priority smallint NOT NULL DEFAULT 3 CHECK (priority BETWEEN 1 AND 5);

-- First steps of delayed tasks, by when they become ready.
CREATE INDEX steps_delayed ON steps (next_attempt_at) WHERE status = 1 AND unmet_dependencies = 0 AND next_attempt_at IS NOT NULL;
