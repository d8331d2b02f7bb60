-- ledger dump of 2025-04-04
SELECT 1;
