-- The users domain: profiles and preferences. Nothing outside archlab-users touches these.
CREATE TABLE users.profiles (
    user_id    UUID PRIMARY KEY,
    email      TEXT NOT NULL,
    name       TEXT NOT NULL,
    status     TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended')),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE users.preferences (
    user_id          UUID PRIMARY KEY REFERENCES users.profiles (user_id) ON DELETE CASCADE,
    email_receipts   BOOLEAN NOT NULL DEFAULT true,
    marketing_emails BOOLEAN NOT NULL DEFAULT false
);
