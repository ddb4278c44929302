-- The payments domain. A payment row is written as 'pending' BEFORE the provider is charged
-- (keyed by the payment id), so every charge the provider holds can be reconciled with a row
-- here, and a retry with the same Idempotency-Key resumes instead of charging again. The outbox
-- receipts leave by is the kernel's one table definition, created by `archlab_payments::migrate`.
CREATE TABLE payments.payments (
    payment_id          UUID PRIMARY KEY,
    user_id             UUID NOT NULL,
    idempotency_key     TEXT NOT NULL,
    request_fingerprint TEXT NOT NULL,
    amount_cents        BIGINT NOT NULL CHECK (amount_cents > 0),
    currency            TEXT NOT NULL,
    status              TEXT NOT NULL CHECK (status IN ('pending', 'succeeded')),
    provider_charge_id  TEXT,
    notified_at         TIMESTAMPTZ,
    created_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (user_id, idempotency_key)
);
CREATE INDEX payments_by_user ON payments.payments (user_id, created_at DESC);

