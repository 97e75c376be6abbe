-- The payment journal: one row per channel payment, written BEFORE every external call.
CREATE TABLE IF NOT EXISTS payments (
    hub_serial          TEXT PRIMARY KEY,          -- B + YYYYMMDD + node(2) + counter(9): BankSerial and core SeqNo
    channel             TEXT NOT NULL,             -- 01 counter, 02 mobile, 03 self-service, 04 online
    channel_date        TEXT NOT NULL,
    channel_serial      TEXT NOT NULL,
    request_hash        TEXT NOT NULL,             -- SM3 of the canonical request: same key, other payload = refused
    payee               TEXT NOT NULL,             -- CDGJ
    instance            TEXT NOT NULL,             -- BankCode
    customer_no         TEXT NOT NULL,
    payer_account       TEXT NOT NULL,
    amount_fen          INTEGER NOT NULL CHECK (amount_fen > 0),
    total_due_fen       INTEGER NOT NULL CHECK (total_due_fen >= 0),
    branch_no           TEXT NOT NULL,
    teller_no           TEXT NOT NULL,
    tx_date             TEXT NOT NULL,             -- hub calendar date: TxDate / TranDate
    tx_time             TEXT NOT NULL,
    state               TEXT NOT NULL,
    next_action         TEXT NOT NULL DEFAULT 'NONE',
    attempts            INTEGER NOT NULL DEFAULT 0,
    next_attempt_at     TEXT,                       -- clock time; NULL when nothing is pending
    core_seq_no         TEXT,
    core_date           TEXT,
    reversal_seq_no     TEXT,
    reversal_tran_date  TEXT,
    reversal_core_seq_no TEXT,
    reversal_core_date  TEXT,
    reversal_reason     TEXT,
    partner_reversal_serial TEXT,              -- BankSerial of our 1003: the same on every re-send
    partner_reversal_date   TEXT,
    partner_serial      TEXT,
    acct_date           TEXT,
    prepaid_fen         INTEGER,
    last_error          TEXT,
    first_answer        TEXT,                       -- JSON answered to the channel the first time
    created_at          TEXT NOT NULL,
    updated_at          TEXT NOT NULL,
    UNIQUE (channel, channel_date, channel_serial)
);
CREATE INDEX IF NOT EXISTS payments_pending ON payments (next_action, next_attempt_at);
CREATE INDEX IF NOT EXISTS payments_by_acct_date ON payments (payee, instance, acct_date);
CREATE INDEX IF NOT EXISTS payments_by_tx_date ON payments (payee, instance, tx_date);

-- Every state change, for auditors: who moved what, when, from where to where.
CREATE TABLE IF NOT EXISTS payment_events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    hub_serial  TEXT NOT NULL,
    at          TEXT NOT NULL,
    from_state  TEXT NOT NULL,
    to_state    TEXT NOT NULL,
    next_action TEXT NOT NULL,
    note        TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS payment_events_serial ON payment_events (hub_serial);

-- Serial counters per hub calendar date: serials never repeat.
CREATE TABLE IF NOT EXISTS serial_counters (
    day  TEXT PRIMARY KEY,
    last INTEGER NOT NULL
);

-- Settlement instructions: one per partner instance and business date, with a deterministic SeqNo.
CREATE TABLE IF NOT EXISTS settlements (
    payee          TEXT NOT NULL,
    instance       TEXT NOT NULL,
    business_date  TEXT NOT NULL,
    seq_no         TEXT NOT NULL UNIQUE,
    tran_date      TEXT NOT NULL,
    amount_fen     INTEGER NOT NULL,
    record_count   INTEGER NOT NULL,
    state          TEXT NOT NULL,                 -- PENDING, POSTED, REFUSED, UNKNOWN
    core_seq_no    TEXT,
    core_date      TEXT,
    message        TEXT,
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL,
    PRIMARY KEY (payee, instance, business_date)
);
