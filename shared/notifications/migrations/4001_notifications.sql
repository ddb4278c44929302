-- The notifications domain. `processed_messages` is the inbox: an event id is written in the
-- same transaction as the notification it produced, so a redelivered event is recognised
-- and produces nothing twice, whichever build delivered it.
CREATE TABLE notifications.notifications (
    notification_id UUID PRIMARY KEY,
    event_id        UUID NOT NULL UNIQUE,
    user_id         UUID NOT NULL,
    kind            TEXT NOT NULL CHECK (kind IN ('welcome', 'receipt')),
    subject         TEXT NOT NULL,
    body            TEXT NOT NULL,
    payment_id      UUID,
    email_id        TEXT,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX notifications_by_user ON notifications.notifications (user_id, created_at DESC);

CREATE TABLE notifications.processed_messages (
    event_id     UUID PRIMARY KEY,
    processed_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
