-- A run's source and plan live apart from its status: SQLite rewrites a whole row, overflow
-- pages included, on every update, and the plan of a large pack is megabytes, so each status
-- change rewrote it. `runs` keeps what changes; `run_plans` what a run is.
CREATE TABLE run_plans (
    run_id TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    plan_json TEXT NOT NULL
);

INSERT INTO run_plans (run_id, source, plan_json) SELECT id, source, plan_json FROM runs;

ALTER TABLE runs DROP COLUMN source;

ALTER TABLE runs DROP COLUMN plan_json;
