-- A call leaves the queue without an agent: ABANDON (the caller hung up), EXITWITHTIMEOUT
-- (overflow to ARGV[7]) or another exit kind, recorded as the call's outcome.
-- KEYS: call, waiting, stats, events ; ARGV: call_id, stage, now, iso, short_abandon, kind, dest
-- Returns 'left', 'abandoned-before-queue' (no queue state: hung up in the menu),
-- 'not-waiting' or 'already-overflowed'.
local status = redis.call('HGET', KEYS[1], 'status')
if not status and ARGV[6] == 'ABANDON' then
  -- hung up before reaching a queue (welcome, menu): counted, no queue state to clean
  xadd(KEYS[4], 'kind', 'ABANDON', 'time', ARGV[4], 'call_id', ARGV[1], 'queue', '',
       'stage', ARGV[2])
  return 'abandoned-before-queue'
end
if status ~= 'waiting' and status ~= 'overflow' then return 'not-waiting' end
changed('c:' .. ARGV[1])
local now = tonumber(ARGV[3])
local entered = tonumber(redis.call('HGET', KEYS[1], 'entered_at'))
local queue = redis.call('HGET', KEYS[1], 'queue')
local waited = now - entered
redis.call('ZREM', KEYS[2], ARGV[1])
if ARGV[6] == 'ABANDON' then
  redis.call('HSET', KEYS[1], 'status', 'done', 'outcome', 'abandoned', 'ended_at', ARGV[3])
  if waited < tonumber(ARGV[5]) then stat(KEYS[3], 'abandoned_short', 1)
  else stat(KEYS[3], 'abandoned', 1) end
elseif ARGV[6] == 'EXITWITHTIMEOUT' then
  if status == 'overflow' then return 'already-overflowed' end
  redis.call('HSET', KEYS[1], 'status', 'overflow', 'destination', ARGV[7])
  stat(KEYS[3], 'overflowed', 1)
else
  redis.call('HSET', KEYS[1], 'status', 'done', 'outcome', string.lower(ARGV[6]))
end
xadd(KEYS[4], 'kind', ARGV[6], 'time', ARGV[4], 'call_id', ARGV[1], 'queue', queue,
     'waittime', string.format('%.3f', waited), 'stage', ARGV[2], 'destination', ARGV[7])
return 'left'
