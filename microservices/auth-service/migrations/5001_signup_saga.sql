-- The signup saga's own bookkeeping: profiles that a compensation still owes users-service
-- a delete for (the create's outcome was unknown and the delete has not succeeded yet).
-- It belongs to the microservices build alone, so it lives in auth-service, not in the auth
-- domain crate, in its own schema.
CREATE TABLE saga.signup_compensations (
    user_id    UUID PRIMARY KEY,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    attempts   INT NOT NULL DEFAULT 0,
    last_error TEXT
);
