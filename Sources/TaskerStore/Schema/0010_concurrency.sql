-- A step's concurrency limit: its key as its task's context made it, and the most attempts of
-- that key that may run at once (NULL: no limit).
ALTER TABLE steps ADD COLUMN concurrency_key text;
ALTER TABLE steps ADD COLUMN concurrency_max integer;

-- Attempts running per key: waiting reasons, and rebuilding a key's holders after Redis lost them.
CREATE INDEX steps_running_by_key ON steps (concurrency_key) WHERE status = 3 AND concurrency_key IS NOT NULL;
