-- Templates, tasks, their steps and edges, the transition history and annotations.
-- Status columns hold the tasker.v1 enum numbers (TaskStatus, StepStatus).

CREATE TABLE task_templates (
    name text NOT NULL,
    version text NOT NULL,
    -- The TaskTemplate message as registered, defaults filled in (protobuf binary).
    definition bytea NOT NULL,
    -- sha256 of definition: the same content registered again is not a conflict.
    fingerprint text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (name, version)
);

CREATE TABLE tasks (
    task_id uuid PRIMARY KEY,
    name text NOT NULL,
    version text NOT NULL,
    status smallint NOT NULL,
    context jsonb NOT NULL DEFAULT '{}',
    initiator text NOT NULL DEFAULT '',
    source_system text NOT NULL DEFAULT '',
    reason text NOT NULL DEFAULT '',
    tags text[] NOT NULL DEFAULT '{}',
    idempotency_key text,
    -- The last sequence number given to a transition of this task: the history is gapless.
    last_sequence bigint NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    completed_at timestamptz,
    FOREIGN KEY (name, version) REFERENCES task_templates (name, version)
);

CREATE UNIQUE INDEX tasks_idempotency_key ON tasks (name, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX tasks_newest ON tasks (created_at DESC, task_id DESC);
CREATE INDEX tasks_by_name ON tasks (name, created_at DESC, task_id DESC);
CREATE INDEX tasks_by_status ON tasks (status, created_at DESC, task_id DESC);
CREATE INDEX tasks_by_tag ON tasks USING gin (tags);

CREATE TABLE steps (
    step_id uuid PRIMARY KEY,
    task_id uuid NOT NULL REFERENCES tasks (task_id) ON DELETE CASCADE,
    name text NOT NULL,
    handler text NOT NULL,
    -- Order of the step in its template, for stable listings.
    position smallint NOT NULL,
    status smallint NOT NULL,
    attempts integer NOT NULL DEFAULT 0,
    retry_limit integer NOT NULL,
    retryable boolean NOT NULL,
    skippable boolean NOT NULL,
    timeout_seconds integer NOT NULL DEFAULT 0,
    backoff_base_seconds double precision NOT NULL,
    backoff_max_seconds double precision NOT NULL,
    backoff_jitter double precision NOT NULL,
    -- Dependencies not yet COMPLETE, SKIPPED or RESOLVED_MANUALLY: readiness without a join.
    unmet_dependencies integer NOT NULL,
    results jsonb,
    last_error jsonb,
    next_attempt_at timestamptz,
    last_attempted_at timestamptz,
    completed_at timestamptz,
    UNIQUE (task_id, name)
);

-- Ready work: PENDING with nothing unmet, and retries by the time they fall due.
CREATE INDEX steps_pending_ready ON steps (task_id) WHERE status = 1 AND unmet_dependencies = 0;
CREATE INDEX steps_retry_due ON steps (next_attempt_at) WHERE status = 6;
CREATE INDEX steps_enqueued ON steps (last_attempted_at) WHERE status = 2;

CREATE TABLE step_edges (
    task_id uuid NOT NULL REFERENCES tasks (task_id) ON DELETE CASCADE,
    -- from_step must finish before to_step can start.
    from_step uuid NOT NULL REFERENCES steps (step_id) ON DELETE CASCADE,
    to_step uuid NOT NULL REFERENCES steps (step_id) ON DELETE CASCADE,
    PRIMARY KEY (from_step, to_step)
);

CREATE INDEX step_edges_to ON step_edges (to_step);

CREATE TABLE step_transitions (
    task_id uuid NOT NULL REFERENCES tasks (task_id) ON DELETE CASCADE,
    sequence bigint NOT NULL,
    -- NULL for a transition of the task alone.
    step_id uuid,
    step_name text NOT NULL DEFAULT '',
    status smallint NOT NULL,
    previous_status smallint NOT NULL,
    attempt integer NOT NULL DEFAULT 0,
    results jsonb,
    error jsonb,
    task_status smallint NOT NULL,
    occurred_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (task_id, sequence)
);

CREATE TABLE annotations (
    annotation_id bigserial PRIMARY KEY,
    task_id uuid NOT NULL REFERENCES tasks (task_id) ON DELETE CASCADE,
    step_name text NOT NULL DEFAULT '',
    type text NOT NULL,
    annotation jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX annotations_by_task ON annotations (task_id, annotation_id);
