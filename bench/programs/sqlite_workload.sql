-- An in-memory database: recursive CTEs, big blobs and strings, indexes,
-- sorting beyond the cache, joins, window functions, updates and deletes.
PRAGMA cache_size = 200;
CREATE TABLE item(id INTEGER PRIMARY KEY, grp INTEGER, name TEXT, payload BLOB);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000)
INSERT INTO item SELECT i, i % 97, printf('name-%08d-%s', i * 7919 % 20000, substr('abcdefghijklmnop', 1 + i % 16)),
  zeroblob(CASE WHEN i % 500 = 0 THEN 300000 WHEN i % 50 = 0 THEN 20000 ELSE i % 300 END) FROM n;
CREATE INDEX item_name ON item(name);
CREATE INDEX item_grp ON item(grp, length(payload));
SELECT count(*), sum(length(payload)), max(name) FROM item;
SELECT grp, count(*), sum(length(payload)) FROM item GROUP BY grp ORDER BY 3 DESC LIMIT 5;
CREATE TABLE wide AS SELECT id, group_concat(name, ',') OVER (PARTITION BY grp ORDER BY id ROWS 10 PRECEDING) AS w FROM item;
SELECT count(*), sum(length(w)), max(length(w)) FROM wide;
SELECT a.grp, count(*) FROM item a JOIN item b ON a.grp = b.grp AND b.id = a.id + 97 GROUP BY a.grp ORDER BY 2 DESC, 1 LIMIT 3;
UPDATE item SET payload = zeroblob(length(payload) * 2) WHERE id % 7 = 0;
DELETE FROM item WHERE id % 3 = 0;
SELECT count(*), sum(length(payload)) FROM item;
SELECT name FROM item ORDER BY payload DESC, name LIMIT 3;
CREATE TABLE kv(k TEXT PRIMARY KEY, v TEXT) WITHOUT ROWID;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 15000)
INSERT INTO kv SELECT hex(i * 2654435761 % 1000003), replace(printf('%.*c', i % 200, 'x'), 'x', 'yz') FROM n;
SELECT count(*), sum(length(v)) FROM kv WHERE k >= '3530';
VACUUM;
PRAGMA integrity_check;
