-- ledger dump of 2025-04-01
SELECT 1;
