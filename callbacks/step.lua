-- A callback's progress, step (ARGV[3]) one of: agent_answered (the customer is dialled
-- next), customer_answered (detail: when), customer_failed (detail: why).
-- KEYS: agent, call, waiting, stats, events
-- ARGV: agent_id, call_id, step, now, iso, sl_threshold, attempts, retry_delay, detail
-- Returns {verdict, attempt number}, the verdict one of 'dialing', 'connected', 'retry'
-- (back at its place until the retry delay), 'given-up' (attempts spent) or 'refused'
-- (not this agent's callback, or not at that step).
if redis.call('HGET', KEYS[2], 'agent') ~= ARGV[1] then return {'refused', 0} end
local status = redis.call('HGET', KEYS[2], 'status')
local now = tonumber(ARGV[4])
local queue = redis.call('HGET', KEYS[2], 'queue')
local step = ARGV[3]
if step == 'agent_answered' then
  if status ~= 'offered' then return {'refused', 0} end
  changed('a:' .. ARGV[1], 'c:' .. ARGV[2])
  local n = redis.call('HINCRBY', KEYS[2], 'callback_attempts', 1)
  redis.call('HSET', KEYS[1], 'status', 'on_call', 'since', ARGV[4])
  redis.call('HSET', KEYS[2], 'status', 'dialing')
  xadd(KEYS[5], 'kind', 'CALLBACKATTEMPT', 'time', ARGV[5], 'call_id', ARGV[2],
       'queue', queue, 'agent', ARGV[1], 'attempt', n,
       'number', redis.call('HGET', KEYS[2], 'callback_number'))
  return {'dialing', n}
end
if status ~= 'dialing' then return {'refused', 0} end
changed('a:' .. ARGV[1], 'c:' .. ARGV[2])
local entered = tonumber(redis.call('HGET', KEYS[2], 'entered_at'))
local n = tonumber(redis.call('HGET', KEYS[2], 'callback_attempts') or '0')
if step == 'customer_answered' then
  local answered = tonumber(ARGV[9])
  redis.call('HSET', KEYS[2], 'status', 'connected', 'answered_at', answered)
  stat(KEYS[4], 'answered', 1)
  if answered - entered <= tonumber(ARGV[6]) then stat(KEYS[4], 'answered_within', 1) end
  xadd(KEYS[5], 'kind', 'CONNECT', 'time', ARGV[5], 'call_id', ARGV[2], 'queue', queue,
       'agent', ARGV[1], 'holdtime', string.format('%.3f', answered - entered),
       'callback', '1')
  return {'connected', n}
end
-- the customer did not answer (or the agent hung up first): the agent is free again, the
-- call goes back to its place, due again after the retry delay, until attempts are spent
redis.call('HSET', KEYS[1], 'status', 'available', 'call_id', '', 'since', ARGV[4],
           'idle_since', ARGV[4])
xadd(KEYS[5], 'kind', 'CALLBACKFAILED', 'time', ARGV[5], 'call_id', ARGV[2], 'queue', queue,
     'agent', ARGV[1], 'attempt', n, 'reason', ARGV[9])
if n >= tonumber(ARGV[7]) then
  redis.call('HSET', KEYS[2], 'status', 'done', 'outcome', 'callback-failed', 'agent', '',
             'ended_at', ARGV[4])
  redis.call('ZREM', KEYS[3], ARGV[2])
  stat(KEYS[4], 'abandoned', 1)
  xadd(KEYS[5], 'kind', 'EXITCALLBACKFAILED', 'time', ARGV[5], 'call_id', ARGV[2],
       'queue', queue, 'attempts', n)
  return {'given-up', n}
end
redis.call('HSET', KEYS[2], 'status', 'waiting', 'agent', '',
           'callback_next_at', now + tonumber(ARGV[8]))
redis.call('ZADD', KEYS[3], entered, ARGV[2])
return {'retry', n}
