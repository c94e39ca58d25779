-- API tokens: only the SHA-256 of each is kept, never the token. A revoked token keeps its row
-- (so that a call with it is told it was revoked); its name can be given to a new one.
CREATE TABLE api_tokens (
    token_id uuid PRIMARY KEY,
    name text NOT NULL,
    role text NOT NULL CHECK (role IN ('viewer', 'submitter', 'worker', 'admin')),
    token_sha256 bytea NOT NULL UNIQUE,
    created_by text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz,
    last_used_at timestamptz,
    revoked_at timestamptz
);

CREATE UNIQUE INDEX api_tokens_active_name ON api_tokens (name) WHERE revoked_at IS NULL;
