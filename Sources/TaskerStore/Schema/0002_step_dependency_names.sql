-- The names of a step's dependencies on the step itself: reading a task needs no join.
ALTER TABLE steps ADD COLUMN depends_on text[] NOT NULL DEFAULT '{}';

UPDATE steps s SET depends_on = coalesce(
    (SELECT array_agg(d.name ORDER BY d.position) FROM step_edges e JOIN steps d ON d.step_id = e.from_step
     WHERE e.to_step = s.step_id), '{}');
