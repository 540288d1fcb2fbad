-- An effect remembers a hash of the arguments it was sent with: issued again with the same
-- arguments (after a crash) it keeps its idempotency key; with other arguments (changed
-- after an approval asked anew) it is a new effect under a new key.
ALTER TABLE effects ADD COLUMN args_hash TEXT;
