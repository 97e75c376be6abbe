-- The time of the partner reversal's first frame (HHMMSS): a partner that wants a re-sent 104 or
-- 3001 to be the same frame (specs 01, 02, 04) gets the same TxTime, and so the same MAC, after
-- a timeout and after a restart.
ALTER TABLE payments ADD COLUMN partner_reversal_time TEXT;
