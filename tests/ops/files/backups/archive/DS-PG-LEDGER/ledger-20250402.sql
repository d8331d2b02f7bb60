-- ledger dump of 2025-04-02
SELECT 1;
