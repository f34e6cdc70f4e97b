-- Sign-ins stop growing without end. Until now every login added a family that stayed forever,
-- every refresh a token row that stayed forever, and nothing deleted either. Now:
-- - a user holds at most a configured number of sign-ins: a new one beyond it deletes the one
--   refreshed longest ago (found by `user_id`, ordered by `refreshed_at`);
-- - a sign-in keeps only its most recent rotated tokens (for reuse detection);
-- - a sign-in whose tokens have all expired, or that was revoked a day ago, is deleted with its
--   tokens (found by `expires_at`: the newest token's expiry, cut to a day after a revocation).
ALTER TABLE account.token_families
    ADD COLUMN refreshed_at timestamptz,
    ADD COLUMN expires_at   timestamptz;

-- From each family's tokens (rewrites every family: ~13 s per million on a small machine, while
-- logins and refreshes wait; see docs/operations.md, "Upgrading").
UPDATE account.token_families f
   SET refreshed_at = t.refreshed_at,
       expires_at = least(t.expires_at, f.revoked_at + interval '1 day')
  FROM (SELECT family_id, max(created_at) AS refreshed_at, max(expires_at) AS expires_at
          FROM account.refresh_tokens
         GROUP BY family_id) t
 WHERE t.family_id = f.id;
-- A family always had a token; should one have none, it has ended.
UPDATE account.token_families
   SET refreshed_at = created_at, expires_at = created_at
 WHERE expires_at IS NULL;

ALTER TABLE account.token_families
    ALTER COLUMN refreshed_at SET DEFAULT now(),
    ALTER COLUMN refreshed_at SET NOT NULL,
    ALTER COLUMN expires_at SET NOT NULL;

CREATE INDEX token_families_expires_idx ON account.token_families (expires_at);
-- Every family of a user, revoked or not (the cap counts them all); replaces the index of the
-- live ones, which the revocation of a user's other sign-ins used.
CREATE INDEX token_families_user_all_idx ON account.token_families (user_id);
DROP INDEX account.token_families_user_idx;
