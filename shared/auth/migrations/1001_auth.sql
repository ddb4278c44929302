-- The auth domain: credentials, sessions and an audit trail. The outbox its events leave by
-- is the kernel's one table definition, created by `archlab_auth::migrate` after this.
CREATE TABLE auth.credentials (
    user_id       UUID PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    -- 'pending' only exists between the steps of the microservices' signup saga.
    status        TEXT NOT NULL CHECK (status IN ('pending', 'active')),
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Tokens are stored as SHA-256 digests: a leaked table holds no usable token.
CREATE TABLE auth.sessions (
    token_hash BYTEA PRIMARY KEY,
    user_id    UUID NOT NULL REFERENCES auth.credentials (user_id) ON DELETE CASCADE,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at TIMESTAMPTZ NOT NULL,
    revoked_at TIMESTAMPTZ
);
CREATE INDEX sessions_by_user ON auth.sessions (user_id);

CREATE TABLE auth.audit_log (
    id      BIGSERIAL PRIMARY KEY,
    user_id UUID NOT NULL,
    action  TEXT NOT NULL,
    at      TIMESTAMPTZ NOT NULL DEFAULT now()
);

