-- Append one entry to the audit chain, atomically: compare the head with the entry's prev,
-- XADD the entry, move the head to its hash, index its audit id. No MAXLEN: the audit log
-- is kept as long as the data it refers to (README "Audit log", retention).
-- KEYS: stream, head, ids (hash: audit id -> stream id)
-- ARGV: prev the entry was hashed with, audit id, the entry's hash, genesis,
--       field/value pairs of the entry...
-- Answers: {'appended', stream id}; {'moved', head} (another writer came first: rehash on
-- that head and try again); {'duplicate', stream id} (this audit id is chained already: a
-- replay of an entry whose first attempt did reach Redis).
local known = redis.call('HGET', KEYS[3], ARGV[2])
if known then
    return {'duplicate', known}
end
local head = redis.call('GET', KEYS[2]) or ARGV[4]
if head ~= ARGV[1] then
    return {'moved', head}
end
local id = redis.call('XADD', KEYS[1], '*', unpack(ARGV, 5))
redis.call('SET', KEYS[2], ARGV[3])
redis.call('HSET', KEYS[3], ARGV[2], id)
return {'appended', id}
