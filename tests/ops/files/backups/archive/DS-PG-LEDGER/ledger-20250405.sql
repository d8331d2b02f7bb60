-- ledger dump of 2025-04-05
SELECT 1;
