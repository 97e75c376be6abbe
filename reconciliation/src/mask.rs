//! Masking for reports: the one rule of `codecs::mask`. The settlement instruction is the business
//! record itself and is written unmasked.

pub use codecs::mask::mask_account;
