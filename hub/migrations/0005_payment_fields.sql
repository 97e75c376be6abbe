-- Partner-specific elements of a payment (medical: the insured's name and the year; cable TV: the
-- package and months), as a JSON object of strings: a status query or cancel after a restart
-- needs them, and the request hash covers them.
ALTER TABLE payments ADD COLUMN fields TEXT NOT NULL DEFAULT '{}';
