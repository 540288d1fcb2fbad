-- A step's final, successful attempt is kept in its `steps` row (model and redacted detail),
-- so the common case writes one row per step; `attempts` holds the other attempts (failed,
-- interrupted, over budget).
ALTER TABLE steps ADD COLUMN model TEXT;
ALTER TABLE steps ADD COLUMN detail_json TEXT;
