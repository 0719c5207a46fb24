//! Deterministic generator of large organizations (to be written).
