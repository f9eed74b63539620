-- An agent's explicit act (login, logout, pause, resume, wrapup_end), or 'ensure': make a
-- configured agent known with the initial status.
-- KEYS: agent, events, agents ; ARGV: agent_id, action, reason, now, iso, initial-status
-- Returns {status after, 'ok' | 'refused'}.
local status = redis.call('HGET', KEYS[1], 'status')
local action = ARGV[2]
-- One changed() per script, whichever of the steps below changed the agent.
local added = action == 'ensure' and redis.call('SADD', KEYS[3], ARGV[1]) == 1
if not status then
  status = ARGV[6]
  redis.call('HSET', KEYS[1], 'status', status, 'idle_since', ARGV[4], 'since', ARGV[4])
  added = true
end
local to = nil
local idle = status == 'available' or status == 'paused' or status == 'wrap_up'
if action == 'login' and status == 'logged_out' then to = 'available'
elseif action == 'logout' and idle then to = 'logged_out'
elseif action == 'pause' and idle then to = 'paused'
elseif action == 'resume' and status == 'paused' then to = 'available'
elseif action == 'wrapup_end' and status == 'wrap_up' then to = 'available'
end
if to or added then changed('a:' .. ARGV[1]) end
if action == 'ensure' and not to then return {status, 'ok'} end
if not to then return {status, 'refused'} end
redis.call('HSET', KEYS[1], 'status', to, 'since', ARGV[4])
if to == 'paused' then redis.call('HSET', KEYS[1], 'pause_reason', ARGV[3])
else redis.call('HSET', KEYS[1], 'pause_reason', '') end
if to == 'available' then redis.call('HSET', KEYS[1], 'idle_since', ARGV[4]) end
local kinds = {login='AGENTLOGIN', logout='AGENTLOGOFF', pause='PAUSE', resume='UNPAUSE',
               wrapup_end='WRAPUPEND'}
xadd(KEYS[2], 'kind', kinds[action], 'time', ARGV[5], 'agent', ARGV[1], 'reason', ARGV[3])
return {to, 'ok'}
