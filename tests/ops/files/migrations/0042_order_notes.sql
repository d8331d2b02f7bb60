ALTER TABLE orders ADD COLUMN note text;
UPDATE orders SET note = 'migrated' WHERE total > 100;
