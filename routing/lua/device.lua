-- A softphone's device state (ARI DeviceStateChanged) pauses or resumes its agent.
-- KEYS: agent, events ; ARGV: agent_id, device-state, now, iso
-- Returns {status, 'changed' | 'unchanged'}.
local status = redis.call('HGET', KEYS[1], 'status')
local reason = redis.call('HGET', KEYS[1], 'pause_reason') or ''
local state = ARGV[2]
local busy = state == 'INUSE' or state == 'BUSY' or state == 'RINGING' or
             state == 'RINGINUSE' or state == 'ONHOLD'
local to, why = nil, ''
if busy and status == 'available' then to, why = 'paused', 'busy-elsewhere'
elseif state == 'UNAVAILABLE' and (status == 'available' or
    (status == 'paused' and reason == 'busy-elsewhere')) then to, why = 'paused', 'unavailable'
elseif state == 'NOT_INUSE' and status == 'paused' and
    (reason == 'busy-elsewhere' or reason == 'unavailable') then to = 'available'
end
if not to then return {status or '', 'unchanged'} end
changed('a:' .. ARGV[1])
redis.call('HSET', KEYS[1], 'status', to, 'pause_reason', why, 'since', ARGV[3])
if to == 'available' then
  redis.call('HSET', KEYS[1], 'idle_since', ARGV[3])
  xadd(KEYS[2], 'kind', 'UNPAUSE', 'time', ARGV[4], 'agent', ARGV[1], 'reason', reason,
       'source', 'device')
else
  xadd(KEYS[2], 'kind', 'PAUSE', 'time', ARGV[4], 'agent', ARGV[1], 'reason', why,
       'source', 'device')
end
return {to, 'changed'}
