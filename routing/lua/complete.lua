-- The conversation ended: counted as handled, the agent to wrap-up (or available).
-- KEYS: agent, call, stats, events ; ARGV: agent_id, call_id, by, now, iso, wrapup_s, source
-- (source: '' when the call flow reports it, 'sweep' when the sweep found the call's channel
-- gone with the agent still on it; then the event carries source=sweep)
-- Returns 'completed' or 'not-connected'.
if redis.call('HGET', KEYS[2], 'status') ~= 'connected' then return 'not-connected' end
changed('a:' .. ARGV[1], 'c:' .. ARGV[2])
local now = tonumber(ARGV[4])
local answered = tonumber(redis.call('HGET', KEYS[2], 'answered_at') or ARGV[4])
local entered = tonumber(redis.call('HGET', KEYS[2], 'entered_at'))
local queue = redis.call('HGET', KEYS[2], 'queue')
redis.call('HSET', KEYS[2], 'status', 'done', 'outcome', 'completed', 'ended_at', ARGV[4])
stat(KEYS[3], 'handled', 1)
stat(KEYS[3], 'handle_time_total', now - answered)
if redis.call('HGET', KEYS[1], 'call_id') == ARGV[2] then
  local wrap = tonumber(ARGV[6])
  if wrap > 0 then
    redis.call('HSET', KEYS[1], 'status', 'wrap_up', 'call_id', '', 'since', ARGV[4],
               'wrap_until', now + wrap, 'last_call_at', ARGV[4])
  else
    redis.call('HSET', KEYS[1], 'status', 'available', 'call_id', '', 'since', ARGV[4],
               'idle_since', ARGV[4], 'last_call_at', ARGV[4])
  end
end
local kind = 'COMPLETEAGENT'
if ARGV[3] == 'caller' then kind = 'COMPLETECALLER' end
local fields = {'kind', kind, 'time', ARGV[5], 'call_id', ARGV[2], 'queue', queue,
                'agent', ARGV[1], 'holdtime', string.format('%.3f', answered - entered),
                'calltime', string.format('%.3f', now - answered)}
if (ARGV[7] or '') ~= '' then
  fields[#fields + 1] = 'source'
  fields[#fields + 1] = ARGV[7]
end
xadd(KEYS[4], unpack(fields))
return 'completed'
