-- Finished tasks by when they finished: what retention deletes, oldest first, without a scan.
CREATE INDEX tasks_finished ON tasks (completed_at) WHERE completed_at IS NOT NULL;
