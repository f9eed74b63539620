-- KEYS: agent, call, waiting, stats, events
-- ARGV: agent_id, call_id, outcome, now, iso, pause_reason, sl_threshold, short_abandon
-- Returns 'connected', 'already-connected', 'abandoned' (the caller hung up while it rang),
-- 'requeued' (the agent paused, the call back at its place) or 'not-offered' (this call
-- is not offered to this agent).
if redis.call('HGET', KEYS[2], 'agent') ~= ARGV[1] then return 'not-offered' end
local outcome = ARGV[3]
-- The answer is reported twice: live (ARI Dial event) and when Dial returns; count it once.
if outcome == 'answered' and redis.call('HGET', KEYS[2], 'status') == 'connected' then
  return 'already-connected'
end
changed('a:' .. ARGV[1], 'c:' .. ARGV[2])
local now = tonumber(ARGV[4])
local entered = tonumber(redis.call('HGET', KEYS[2], 'entered_at'))
local queue = redis.call('HGET', KEYS[2], 'queue')
local waited = now - entered
if outcome == 'answered' then
  redis.call('HSET', KEYS[1], 'status', 'on_call', 'since', ARGV[4])
  redis.call('HSET', KEYS[2], 'status', 'connected', 'answered_at', ARGV[4])
  stat(KEYS[4], 'answered', 1)
  if waited <= tonumber(ARGV[7]) then stat(KEYS[4], 'answered_within', 1) end
  xadd(KEYS[5], 'kind', 'CONNECT', 'time', ARGV[5], 'call_id', ARGV[2], 'queue', queue,
       'agent', ARGV[1], 'holdtime', string.format('%.3f', waited))
  return 'connected'
end
if outcome == 'caller_gone' then
  redis.call('HSET', KEYS[1], 'status', 'available', 'call_id', '', 'since', ARGV[4])
  redis.call('HSET', KEYS[2], 'status', 'done', 'outcome', 'abandoned')
  if waited < tonumber(ARGV[8]) then stat(KEYS[4], 'abandoned_short', 1)
  else stat(KEYS[4], 'abandoned', 1) end
  xadd(KEYS[5], 'kind', 'ABANDON', 'time', ARGV[5], 'call_id', ARGV[2], 'queue', queue,
       'agent', ARGV[1], 'waittime', string.format('%.3f', waited), 'stage', 'ringing')
  return 'abandoned'
end
-- no answer, rejected, busy elsewhere, unavailable: the agent is paused with the reason and
-- the call goes back to its original position (its score is still entered_at).
redis.call('HSET', KEYS[1], 'status', 'paused', 'pause_reason', ARGV[6], 'call_id', '',
           'since', ARGV[4])
local offered = cjson.decode(redis.call('HGET', KEYS[2], 'offered_to') or '[]')
table.insert(offered, ARGV[1])
redis.call('HSET', KEYS[2], 'status', 'waiting', 'agent', '', 'offered_to', cjson.encode(offered))
redis.call('ZADD', KEYS[3], entered, ARGV[2])
local kind = 'RINGNOANSWER'
if outcome == 'rejected' then kind = 'RINGCANCELED' end
if outcome == 'busy' then kind = 'RINGBUSY' end
if outcome == 'unavailable' then kind = 'RINGUNAVAILABLE' end
xadd(KEYS[5], 'kind', kind, 'time', ARGV[5], 'call_id', ARGV[2], 'queue', queue,
     'agent', ARGV[1])
xadd(KEYS[5], 'kind', 'PAUSE', 'time', ARGV[5], 'agent', ARGV[1], 'reason', ARGV[6])
return 'requeued'
