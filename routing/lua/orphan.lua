-- A waiting call whose instance died and whose channel is gone leaves (EXITORPHANED).
-- KEYS: call, waiting, events ; ARGV: call_id, dead-instance, now, iso
-- Returns 'removed', 'not-waiting', 'taken-over' (another instance owns it now) or
-- 'callback' (nobody holds the line of a callback: it waits for its turn).
if redis.call('HGET', KEYS[1], 'status') ~= 'waiting' then return 'not-waiting' end
if redis.call('HGET', KEYS[1], 'instance') ~= ARGV[2] then return 'taken-over' end
if redis.call('HGET', KEYS[1], 'callback') == '1' then return 'callback' end
changed('c:' .. ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HSET', KEYS[1], 'status', 'done', 'outcome', 'orphaned', 'ended_at', ARGV[3])
xadd(KEYS[3], 'kind', 'EXITORPHANED', 'time', ARGV[4], 'call_id', ARGV[1],
     'queue', redis.call('HGET', KEYS[1], 'queue'), 'instance', ARGV[2])
return 'removed'
