-- ledger dump of 2025-04-03
SELECT 1;
