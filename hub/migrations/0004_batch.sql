-- County water (spec 02): the withholding agreement register and the batch withholding journal.

-- One row per agreement the water company answered 000 to (201); a 202 answered 000 sets end_date.
CREATE TABLE IF NOT EXISTS withholding_agreements (
    instance        TEXT NOT NULL,
    agreement_no    TEXT NOT NULL,
    customer_no     TEXT NOT NULL,
    account_no      TEXT NOT NULL,
    effective_date  TEXT NOT NULL,             -- YYYYMMDD: the first batch that may include it
    end_date        TEXT,                      -- YYYYMMDD of the 202; NULL while live
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    PRIMARY KEY (instance, agreement_no)
);
CREATE INDEX IF NOT EXISTS withholding_agreements_customer
    ON withholding_agreements (instance, customer_no);

-- One row per DK file the hub processed (FileResult 000); the result bytes are kept so that a
-- re-drop of the same content re-writes them byte for byte.
CREATE TABLE IF NOT EXISTS batch_runs (
    instance    TEXT NOT NULL,
    batch_no    TEXT NOT NULL,
    batch_date  TEXT NOT NULL,
    file_sm3    TEXT NOT NULL,                 -- SM3 of the DK file's bytes: other content is 903
    state       TEXT NOT NULL CHECK (state IN ('RUNNING', 'DONE')),
    result      BLOB,                          -- the DKR bytes, once DONE
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    PRIMARY KEY (instance, batch_no)
);

-- One row per DK line, written BEFORE its 8002 (state DEBITING) and finished with its result.
CREATE TABLE IF NOT EXISTS batch_lines (
    instance     TEXT NOT NULL,
    batch_no     TEXT NOT NULL,
    seq_no       INTEGER NOT NULL,
    customer_no  TEXT NOT NULL DEFAULT '',       -- as the DK line gives it: reconciliation needs it
    amount_fen   INTEGER NOT NULL DEFAULT 0,
    state        TEXT NOT NULL CHECK (state IN ('DEBITING', 'DONE')),
    bank_serial  TEXT,                          -- set when a debit was (or may have been) sent
    result       TEXT,                          -- 000, 301-306, 399 once DONE
    core_seq_no  TEXT,
    core_date    TEXT,
    note         TEXT NOT NULL DEFAULT '',
    updated_at   TEXT NOT NULL,
    PRIMARY KEY (instance, batch_no, seq_no),
    FOREIGN KEY (instance, batch_no) REFERENCES batch_runs (instance, batch_no)
);
