ALTER TABLE order_lines DROP COLUMN sku;
CREATE INDEX order_lines_sku ON order_lines (sku);
