"""Operations: background jobs, idempotency records and the audit log."""
