-- Key management: maker-checker promotions of a link's next key, and sealed session keys.
CREATE TABLE IF NOT EXISTS key_promotions (
    id               INTEGER PRIMARY KEY,
    link             TEXT NOT NULL,
    next_fingerprint TEXT NOT NULL,             -- first 8 hex of SM3 of the key: never the key
    maker            TEXT NOT NULL,
    checker          TEXT,
    requested_at     TEXT NOT NULL,             -- hub clock
    decided_at       TEXT,
    state            TEXT NOT NULL CHECK (state IN ('PENDING', 'APPROVED')),
    CHECK (checker IS NULL OR lower(checker) <> lower(maker)),
    CHECK ((state = 'APPROVED') = (checker IS NOT NULL AND decided_at IS NOT NULL))
);
-- One request waiting per link.
CREATE UNIQUE INDEX IF NOT EXISTS key_promotions_one_pending ON key_promotions (link) WHERE state = 'PENDING';
CREATE INDEX IF NOT EXISTS key_promotions_link ON key_promotions (link, state);

-- Session keys from a partner's sign-in, sealed under the master key (SM4-CBC + HMAC-SM3).
CREATE TABLE IF NOT EXISTS session_keys (
    link        TEXT PRIMARY KEY,
    sealed_hex  TEXT NOT NULL,                  -- IV(16) || C || tag(32), hex
    key_id      TEXT,                           -- the partner's key id, when it has one
    key_fp      TEXT NOT NULL,
    obtained_at TEXT NOT NULL,
    expires_at  TEXT NOT NULL
);
