-- An offer nobody followed up: the agent is freed ('free': the owner died, not their fault)
-- or paused missed ('missed': a callback the agent did not answer); the call keeps its place.
-- KEYS: agent, call, waiting, offered, events ; ARGV: agent_id, call_id, now, iso, mode
-- Returns 'released' or 'not-offered' (not, or no longer, offered to this agent).
redis.call('ZREM', KEYS[4], ARGV[2])
if redis.call('HGET', KEYS[2], 'status') ~= 'offered' then return 'not-offered' end
if redis.call('HGET', KEYS[2], 'agent') ~= ARGV[1] then return 'not-offered' end
changed('a:' .. ARGV[1], 'c:' .. ARGV[2])
local queue = redis.call('HGET', KEYS[2], 'queue')
if redis.call('HGET', KEYS[1], 'call_id') == ARGV[2] then
  if ARGV[5] == 'missed' then
    redis.call('HSET', KEYS[1], 'status', 'paused', 'pause_reason', 'missed', 'call_id', '',
               'since', ARGV[3])
    xadd(KEYS[5], 'kind', 'RINGNOANSWER', 'time', ARGV[4], 'call_id', ARGV[2],
         'queue', queue, 'agent', ARGV[1])
    xadd(KEYS[5], 'kind', 'PAUSE', 'time', ARGV[4], 'agent', ARGV[1], 'reason', 'missed')
  else
    redis.call('HSET', KEYS[1], 'status', 'available', 'call_id', '', 'since', ARGV[3])
    xadd(KEYS[5], 'kind', 'OFFERRELEASED', 'time', ARGV[4], 'call_id', ARGV[2],
         'queue', queue, 'agent', ARGV[1])
  end
end
local offered = cjson.decode(redis.call('HGET', KEYS[2], 'offered_to') or '[]')
table.insert(offered, ARGV[1])
redis.call('HSET', KEYS[2], 'status', 'waiting', 'agent', '', 'offered_to', cjson.encode(offered))
redis.call('ZADD', KEYS[3], redis.call('HGET', KEYS[2], 'entered_at'), ARGV[2])
return 'released'
