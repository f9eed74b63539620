-- The change log (see routing/live_snapshot.py): every script that changes an agent or a waiting
-- call calls changed('a:<agent id>', 'c:<call id>', ...) once; the pool's version goes up by
-- one and each name is recorded at it. Its keys are the last two KEYS of every script (the
-- router appends them). A new log (first change, or the keys were lost) gets a new epoch, so
-- readers of the old one start over; entries older than CHANGES_KEPT versions are dropped and
-- the floor says so.
--
-- Prepended to every script that changes state (routing/scripts.py, which fills in
-- ${changes_kept}: routing.live.CHANGES_KEPT).
local CHANGES_KEPT = ${changes_kept}
local VERSION, CHANGED = KEYS[#KEYS - 1], KEYS[#KEYS]
local function changed(...)
  local v = redis.call('HINCRBY', VERSION, 'version', 1)
  if v == 1 then
    local t = redis.call('TIME')
    redis.call('HSET', VERSION, 'epoch', t[1] .. '.' .. t[2], 'floor', 0)
    redis.call('DEL', CHANGED)
  end
  for _, what in ipairs({...}) do redis.call('ZADD', CHANGED, v, what) end
  if v % 1000 == 0 then
    redis.call('ZREMRANGEBYSCORE', CHANGED, '-inf', v - CHANGES_KEPT)
    redis.call('HSET', VERSION, 'floor', v - CHANGES_KEPT)
  end
end
local function xadd(stream, ...)
  redis.call('XADD', stream, 'MAXLEN', '~', 1000000, '*', ...)
end
local function stat(key, field, n)
  redis.call('HINCRBYFLOAT', key, field, n)
  redis.call('EXPIRE', key, 864000)
end
