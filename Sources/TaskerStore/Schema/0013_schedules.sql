-- Schedules: a task of a template every time a cron fires. next_run_at is NULL while paused;
-- a node fires a schedule by submitting its task (idempotent on the firing) and then moving
-- next_run_at on, only if no other node moved it first.
CREATE TABLE schedules (
    name text PRIMARY KEY,
    template text NOT NULL,
    version text NOT NULL,
    cron text NOT NULL,
    timezone text NOT NULL,
    context jsonb NOT NULL,
    paused boolean NOT NULL DEFAULT false,
    overlap smallint NOT NULL,
    next_run_at timestamptz,
    last_run_at timestamptz,
    last_task_id uuid,
    last_error text,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX schedules_due ON schedules (next_run_at) WHERE next_run_at IS NOT NULL;
