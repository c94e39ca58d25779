"""Old tasks written straight into a test's Postgres, as a long-running Tasker would have left
them: each with four steps, their edges, nine transitions and an annotation."""

SEED = """
CREATE TEMP TABLE seed AS SELECT gen_random_uuid() AS task_id FROM generate_series(1, {count});
INSERT INTO tasks (task_id, name, version, status, created_at, updated_at, completed_at, last_sequence)
    SELECT task_id, '{template}', '1', {status}, now() - interval '{age}' - interval '1 hour', now() - interval '{age}',
        CASE WHEN {status} IN (3, 4, 5, 6) THEN now() - interval '{age}' END, 9 FROM seed;
INSERT INTO steps (step_id, task_id, name, handler, position, status, retry_limit, retryable, skippable,
        backoff_base_seconds, backoff_max_seconds, backoff_jitter, unmet_dependencies)
    SELECT gen_random_uuid(), s.task_id, 'step' || p, 'seeded.x', p, {step_status}, 3, true, false, 1, 300, 0.1, 0
    FROM seed s, generate_series(0, 3) p;
INSERT INTO step_edges (task_id, from_step, to_step)
    SELECT a.task_id, a.step_id, b.step_id FROM seed s JOIN steps a ON a.task_id = s.task_id
    JOIN steps b ON b.task_id = a.task_id AND b.position = a.position + 1;
INSERT INTO step_transitions (task_id, sequence, step_name, status, previous_status, task_status)
    SELECT s.task_id, q, '', 4, 3, {status} FROM seed s, generate_series(1, 9) q;
INSERT INTO annotations (task_id, type) SELECT task_id, 'note' FROM seed;
DROP TABLE seed;
"""


def seed(postgres, count, status=3, step_status=4, age="40 days", template="seeded"):
    """`count` tasks of `template` in `status` (3 COMPLETE, 4 ERROR, 2 IN_PROGRESS), last
    changed `age` ago; a finished one finished then."""
    postgres.query("INSERT INTO task_templates (name, version, definition, fingerprint) VALUES ('%s', '1', '', '%s') "
                   "ON CONFLICT DO NOTHING" % (template, template))
    postgres.query(SEED.format(count=count, status=status, step_status=step_status, age=age, template=template))


def counts(postgres):
    """Rows of every table that holds a task, and those left without their task."""
    row = postgres.query("""
        SELECT (SELECT count(*) FROM tasks), (SELECT count(*) FROM steps), (SELECT count(*) FROM step_edges),
            (SELECT count(*) FROM step_transitions), (SELECT count(*) FROM annotations),
            (SELECT count(*) FROM steps s WHERE NOT EXISTS (SELECT 1 FROM tasks t WHERE t.task_id = s.task_id))
            + (SELECT count(*) FROM step_edges e WHERE NOT EXISTS (SELECT 1 FROM tasks t WHERE t.task_id = e.task_id))
            + (SELECT count(*) FROM step_transitions h WHERE NOT EXISTS (SELECT 1 FROM tasks t WHERE t.task_id = h.task_id))
            + (SELECT count(*) FROM annotations a WHERE NOT EXISTS (SELECT 1 FROM tasks t WHERE t.task_id = a.task_id))
    """)[0]
    return dict(zip(("tasks", "steps", "edges", "history", "annotations", "orphans"), map(int, row)))
