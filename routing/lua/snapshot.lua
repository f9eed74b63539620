-- The routing state in one script call, JSON-encoded by Redis: redis-py parses RESP in Python
-- (no hiredis), and parsing ~1,500 hashes' replies cost ~90 ms per snapshot in the benchmark;
-- one JSON string parses in C. It is a consistent cut of the state. Given the (epoch, version)
-- the reader's copy is at, it returns only the agents and calls changed since (``full`` false;
-- a name whose agent left the agents set or whose call left the waiting set comes with an
-- empty hash or no score); everything when the copy cannot be brought forward (see
-- routing/live_snapshot.py). Agent and call keys are derived from ARGV[1] (they share the {rt}
-- hash slot, as every key here does). Queue stats are read whole every time (a few hashes).
-- KEYS: agents, waiting, stats..., version, changed ; ARGV: key prefix ("P{rt}:"), epoch, version
local VERSION, CHANGED = KEYS[#KEYS - 1], KEYS[#KEYS]
local log = redis.call('HMGET', VERSION, 'version', 'epoch', 'floor')
-- The epoch readers see names this redis-server process too: a Redis that crashed and came
-- back without its last writes has the same log epoch and lower versions, which new changes
-- then reuse for other agents and calls; a copy at such a version would take them as seen.
local run = string.match(redis.call('INFO', 'server'), 'run_id:(%x+)') or ''
local version, epoch = log[1] or '0', (log[2] or '') .. '/' .. run
local since = tonumber(ARGV[3])
local stats = {}
for i = 3, #KEYS - 2 do stats[i - 2] = redis.call('HGETALL', KEYS[i]) end
local agents, calls = {}, {}
if since >= 0 and epoch == ARGV[2] and since >= tonumber(log[3] or '0')
    and since <= tonumber(version) then
  for _, what in ipairs(redis.call('ZRANGEBYSCORE', CHANGED, '(' .. since, '+inf')) do
    local id = string.sub(what, 3)
    if string.sub(what, 1, 1) == 'a' then
      local row = {}
      if redis.call('SISMEMBER', KEYS[1], id) == 1 then
        row = redis.call('HGETALL', ARGV[1] .. 'agent:' .. id)
      end
      agents[#agents + 1] = {id, row}
    else
      calls[#calls + 1] = {id, redis.call('ZSCORE', KEYS[2], id),
                           redis.call('HGETALL', ARGV[1] .. 'call:' .. id)}
    end
  end
  return cjson.encode({full = false, version = version, epoch = epoch, agents = agents,
                       calls = calls, stats = stats})
end
for i, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  agents[i] = {id, redis.call('HGETALL', ARGV[1] .. 'agent:' .. id)}
end
local ids = redis.call('ZRANGE', KEYS[2], 0, -1, 'WITHSCORES')
for i = 1, #ids, 2 do
  calls[#calls + 1] = {ids[i], ids[i + 1], redis.call('HGETALL', ARGV[1] .. 'call:' .. ids[i])}
end
return cjson.encode({full = true, version = version, epoch = epoch, agents = agents,
                     calls = calls, stats = stats})
