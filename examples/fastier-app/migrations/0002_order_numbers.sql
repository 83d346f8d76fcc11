-- Human-facing order numbers from a standalone sequence (owned by no column,
-- so a database move must copy its position explicitly), and an index for
-- the page-view reports.

CREATE SEQUENCE order_number_seq START WITH 100001;

-- A volatile default fills the existing rows too (one table rewrite).
ALTER TABLE orders
    ADD COLUMN number bigint NOT NULL DEFAULT nextval('order_number_seq');
ALTER TABLE orders ADD CONSTRAINT orders_number_key UNIQUE (number);

CREATE INDEX page_views_created_at_idx ON page_views (created_at);
