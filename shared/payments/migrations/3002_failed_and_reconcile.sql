-- In-doubt payments are resolved by the reconciler (src/reconcile.rs): a payment the
-- provider holds no charge for is marked 'failed' (a retry with the same Idempotency-Key
-- turns it 'pending' again and tries once more). `updated_at` is when a flow last worked
-- on the row; the reconciler takes only rows left alone for longer than its bound, and this
-- index keeps that query off the settled majority of the table.
ALTER TABLE payments.payments DROP CONSTRAINT payments_status_check;
ALTER TABLE payments.payments
    ADD CONSTRAINT payments_status_check CHECK (status IN ('pending', 'succeeded', 'failed'));
CREATE INDEX payments_unsettled ON payments.payments (updated_at)
    WHERE status = 'pending' OR (status = 'succeeded' AND notified_at IS NULL);
