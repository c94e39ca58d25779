-- A task's concurrency limit (its template's, the key as its context made it), and when it
-- was given a place (NULL while it waits for one).
ALTER TABLE tasks ADD COLUMN concurrency_key text;
ALTER TABLE tasks ADD COLUMN concurrency_max integer;
ALTER TABLE tasks ADD COLUMN admitted_at timestamptz;

-- The tasks waiting for a place of each key, oldest first; and those holding one.
CREATE INDEX tasks_waiting_by_key ON tasks (concurrency_key, task_id) WHERE admitted_at IS NULL AND concurrency_key IS NOT NULL;
CREATE INDEX tasks_placed_by_key ON tasks (concurrency_key) WHERE admitted_at IS NOT NULL AND concurrency_key IS NOT NULL AND status IN (1, 2);
