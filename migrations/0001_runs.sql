-- Galaxy's durable store: runs, steps (one row per step, output stored once), attempts,
-- approvals, effects (idempotency keys) and an append-only audit log.
-- Portable SQL: the same file runs on SQLite and PostgreSQL.

CREATE TABLE runs (
    id TEXT PRIMARY KEY,
    pack_name TEXT NOT NULL,
    pack_path TEXT NOT NULL,
    source TEXT NOT NULL,
    plan_json TEXT NOT NULL,
    plan_hash TEXT NOT NULL,
    inputs_json TEXT NOT NULL,
    options_json TEXT NOT NULL,
    status TEXT NOT NULL,
    outcome TEXT,
    error TEXT,
    result_json TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE steps (
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
    PRIMARY KEY (run_id, step_key)
);

CREATE TABLE attempts (
    run_id TEXT NOT NULL,
    step_key TEXT NOT NULL,
    attempt BIGINT NOT NULL,
    status TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    ended_at BIGINT NOT NULL,
    input_tokens BIGINT NOT NULL,
    output_tokens BIGINT NOT NULL,
    cost DOUBLE PRECISION NOT NULL,
    model TEXT,
    error TEXT,
    detail_json TEXT,
    PRIMARY KEY (run_id, step_key, attempt)
);

CREATE TABLE approvals (
    run_id TEXT NOT NULL,
    step_key TEXT NOT NULL,
    tool TEXT NOT NULL,
    args_json TEXT NOT NULL,
    args_hash TEXT NOT NULL,
    reason TEXT NOT NULL,
    status TEXT NOT NULL,
    decided_by TEXT,
    note TEXT,
    requested_at BIGINT NOT NULL,
    decided_at BIGINT,
    PRIMARY KEY (run_id, step_key)
);

CREATE TABLE effects (
    idempotency_key TEXT PRIMARY KEY,
    run_id TEXT NOT NULL,
    step_key TEXT NOT NULL,
    tool TEXT NOT NULL,
    times_issued BIGINT NOT NULL,
    status TEXT NOT NULL,
    first_issued_at BIGINT NOT NULL,
    last_issued_at BIGINT NOT NULL
);

CREATE TABLE audit (
    run_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    at BIGINT NOT NULL,
    kind TEXT NOT NULL,
    step_key TEXT,
    detail TEXT NOT NULL,
    PRIMARY KEY (run_id, seq)
);

CREATE INDEX runs_created ON runs (created_at);
CREATE INDEX effects_run ON effects (run_id);
