-- 岳阳烟草 (spec 09): the bureau's payable orders, push digests, and the notification outbox.
CREATE TABLE IF NOT EXISTS tobacco_orders (
    order_no      TEXT PRIMARY KEY,
    licence_no    TEXT NOT NULL,
    retailer_name TEXT NOT NULL,
    amount_fen    INTEGER NOT NULL CHECK (amount_fen BETWEEN 1 AND 9999999999),
    order_date    TEXT NOT NULL,              -- yyyyMMdd
    due_date      TEXT NOT NULL,              -- yyyyMMdd
    item_count    INTEGER NOT NULL,
    items_summary TEXT NOT NULL,
    state         INTEGER NOT NULL CHECK (state IN (1, 2, 3, 4)),
    push_id       TEXT NOT NULL,
    received_at   TEXT NOT NULL,              -- hub clock
    cancel_reason TEXT,
    bank_serial   TEXT UNIQUE,                -- set with state 2, kept for 3
    acct_date     TEXT,                       -- core date of the posting (state 3)
    pay_time      TEXT,                       -- hub clock when state 3 was reached
    channel       TEXT,
    updated_at    TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS tobacco_orders_licence ON tobacco_orders (licence_no, state, due_date);

-- Kept 400 days: a repeat pushId with another body is 1005.
CREATE TABLE IF NOT EXISTS tobacco_pushes (
    push_id     TEXT PRIMARY KEY,
    body_sm3    TEXT NOT NULL,
    received_at TEXT NOT NULL
);

-- One row per payment, written in the transaction that makes the order paid.
CREATE TABLE IF NOT EXISTS tobacco_notifications (
    notify_id       TEXT PRIMARY KEY,         -- = bankSerial
    order_no        TEXT NOT NULL UNIQUE REFERENCES tobacco_orders (order_no),
    body            BLOB NOT NULL,            -- byte-identical on every attempt
    acct_date       TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('PENDING', 'ACKED', 'REJECTED', 'EXPIRED')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    schedule_start  TEXT NOT NULL,            -- first attempt of the current schedule
    deadline_at     TEXT NOT NULL,            -- 72 h after payTime (or after a re-notification)
    next_attempt_at TEXT NOT NULL,
    last_error      TEXT,
    acked_at        TEXT,
    listed_in_file  TEXT                      -- acctDate of the bureau file that listed it
);
CREATE INDEX IF NOT EXISTS tobacco_notifications_due ON tobacco_notifications (status, next_attempt_at);
