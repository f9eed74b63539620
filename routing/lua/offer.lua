-- Compare-and-set on both the agent (available) and the call (waiting): of two instances
-- deciding at once, one wins the agent, the other is refused.
-- KEYS: agent, call, waiting, offered ; ARGV: agent_id, call_id, now, why-json
-- Returns 'offered', 'agent-not-available' or 'call-not-waiting'.
local a = redis.call('HGET', KEYS[1], 'status')
if a ~= 'available' then return 'agent-not-available' end
if redis.call('HGET', KEYS[2], 'status') ~= 'waiting' then return 'call-not-waiting' end
changed('a:' .. ARGV[1], 'c:' .. ARGV[2])
redis.call('HSET', KEYS[1], 'status', 'offered', 'call_id', ARGV[2], 'since', ARGV[3])
redis.call('HSET', KEYS[2], 'status', 'offered', 'agent', ARGV[1], 'offered_at', ARGV[3],
           'why', ARGV[4])
redis.call('ZREM', KEYS[3], ARGV[2])
redis.call('ZADD', KEYS[4], ARGV[3], ARGV[2])
return 'offered'
