-- The account's password policy (`PasswordPolicy`, JSON: min_length, require_lowercase,
-- require_uppercase, require_digit, require_symbol, forbid_login). NULL: no policy
-- beyond a non-empty password (`PasswordPolicy::unrestricted`), what accounts made
-- before this migration and new accounts start with; `PATCH /v1/account` sets it.
-- Keep in step with migrations/sqlite/0005_account_policy.sql.
ALTER TABLE account ADD COLUMN password_policy TEXT;
