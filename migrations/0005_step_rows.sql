-- Step rows are kept in the order they are written, each under one integer key: its run's
-- number times 2^32 plus its place among the run's step rows. A wave's rows are appended at
-- the end of one B-tree, where the key (run_id, step_key) took a second B-tree and a search
-- of it for every row; a run's rows are one range of keys. A step written again (a gate
-- that asks anew, a step resumed) gets a new row, and the latest row of a key is the step's.
--
-- `INTEGER PRIMARY KEY` is SQLite's name for a table's own 64-bit row key; on PostgreSQL
-- the store runs this file with `BIGINT PRIMARY KEY` in its place.

ALTER TABLE runs ADD COLUMN number BIGINT;

UPDATE runs SET number = numbered.number
FROM (SELECT id, ROW_NUMBER() OVER (ORDER BY created_at, id) AS number FROM runs) AS numbered
WHERE runs.id = numbered.id;

CREATE UNIQUE INDEX runs_number ON runs (number);

CREATE TABLE step_rows (
    id INTEGER PRIMARY KEY,
    run_id TEXT NOT NULL,
    step_key TEXT NOT NULL,
    node TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts BIGINT NOT NULL,
    started_at BIGINT NOT NULL,
    ended_at BIGINT NOT NULL,
    output_json TEXT,
    input_tokens BIGINT NOT NULL,
    output_tokens BIGINT NOT NULL,
    cost DOUBLE PRECISION NOT NULL,
    error TEXT,
    model TEXT,
    detail_json TEXT
);

INSERT INTO step_rows (id, run_id, step_key, node, status, attempts, started_at, ended_at, output_json, input_tokens, output_tokens, cost, error, model, detail_json)
SELECT runs.number * 4294967296 + ROW_NUMBER() OVER (PARTITION BY steps.run_id ORDER BY steps.ended_at, steps.step_key),
    steps.run_id, steps.step_key, steps.node, steps.status, steps.attempts, steps.started_at,
    steps.ended_at, steps.output_json, steps.input_tokens, steps.output_tokens, steps.cost,
    steps.error, steps.model, steps.detail_json
FROM steps JOIN runs ON runs.id = steps.run_id;

DROP TABLE steps;

ALTER TABLE step_rows RENAME TO steps;
