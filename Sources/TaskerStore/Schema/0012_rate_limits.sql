-- A step's rate limits as its task's context made them, in the form the queue's admission
-- script reads: a JSON array of [key, limit, period in milliseconds, units] (NULL: none).
ALTER TABLE steps ADD COLUMN rate_limits text;
