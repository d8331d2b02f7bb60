-- plain-SQL dump (pg_dump --format=plain --no-owner), schema-less: restored under the search_path
CREATE TABLE customers (id integer PRIMARY KEY, name text NOT NULL);
CREATE TABLE orders (id integer PRIMARY KEY, customer_id integer NOT NULL REFERENCES customers, total numeric(12, 2));
CREATE TABLE order_lines (order_id integer NOT NULL REFERENCES orders, line integer NOT NULL, sku text NOT NULL,
                          PRIMARY KEY (order_id, line));
INSERT INTO customers SELECT g, 'customer ' || g FROM generate_series(1, 250) g;
INSERT INTO orders SELECT g, 1 + g % 250, (g % 97) * 1.25 FROM generate_series(1, 1200) g;
INSERT INTO order_lines SELECT 1 + g % 1200, g, 'SKU-' || (g % 40) FROM generate_series(1, 2550) g;
