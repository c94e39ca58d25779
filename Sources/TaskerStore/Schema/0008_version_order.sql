-- The newest version of a template, the one a submit without a version runs, is the highest
-- by this order, not the last registered. A version is compared part by part on its dots: a
-- part that is a number by its value (1.9 < 1.10, 007 = 7), a part that is not by its bytes, a
-- number below any other part; a version that is the start of another is the lower (1.0 <
-- 1.0.1). Two versions of one order (1.01 and 1.1) are told apart by which came later.
CREATE FUNCTION tasker_version_order(version text) RETURNS bytea
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT coalesce(string_agg(
        CASE WHEN part ~ '^[0-9]+$' THEN
            -- 0x01, the count of its digits (leading zeros aside), then those digits.
            '\x01'::bytea || set_byte('\x00'::bytea, 0, least(length(ltrim(part, '0')), 255)) || convert_to(ltrim(part, '0'), 'UTF8')
        ELSE '\x02'::bytea || convert_to(part, 'UTF8') END,
        '\x00'::bytea ORDER BY n), ''::bytea)
    FROM regexp_split_to_table(version, '\.') WITH ORDINALITY AS p(part, n)
$$;

ALTER TABLE task_templates ADD COLUMN version_order bytea GENERATED ALWAYS AS (tasker_version_order(version)) STORED;

CREATE INDEX task_templates_highest ON task_templates (name, version_order DESC, registration DESC);
