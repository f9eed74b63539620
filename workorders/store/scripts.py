"""The Lua script that creates a work order: one atomic step in Redis.

It looks up the call, allocates the id, writes hash, history, index sets, op id and event, so
many concurrent creations for one call make one order.

Repeat contacts (``repeat_contact_window``, seconds; 0: off): the script first looks at the
caller's last order of the same category (``wo:repeat:...``, by the number's blind index); if
it is open and its creation or last repeat call is within the window of this call, the call is
linked to it (``contacts`` + 1, a ``repeat`` history entry with the new call id,
``wo:by-call:<new call>`` -> that order, a ``WOREPEAT`` event) instead of creating an order,
in the same atomic step, so concurrent calls of one caller make one order. A create spooled
while Redis was away cannot see the caller's orders: it gets its local order, and at replay
the script links it like a live call (the local id becomes an alias of the linked order, the
call's spooled updates apply to it), exactly once by its operation id.

Every key it touches is in the order's bucket (``workorders.buckets``): one hash slot, so the
script runs on Redis Cluster too; the keys it derives (the order's hash and history, the
alias, the caller's last order) are built from the bucket's key base.
"""

CREATE = """
-- One bucket (workorders.buckets): every key below carries its hash tag.
-- KEYS: by-call, seq, op, index, events stream (or the bucket's outbox), the index sets
--       (workorders.indexes) [, by-caller set, the caller's last order of the category
--       (repeat contacts)]
-- ARGV: the bucket's key base, proposed id, op ttl, created_at (epoch), history entry,
--       events maxlen, repeat link (JSON, '' for none), buckets, this bucket, the order
--       (JSON: [hash field/value pairs, index scores, event field/value pairs], every value
--       a string, scores as the text ZADD would have got as arguments)
local base, proposed = ARGV[1], ARGV[2]
local function alias(id)
  if proposed ~= '' and proposed ~= id then
    redis.call('SET', base .. 'alias:' .. proposed, id)
  end
end
local done = redis.call('GET', KEYS[3])
if done then alias(done) return {done, 0} end
local existing = redis.call('GET', KEYS[1])
if existing then
  alias(existing)
  redis.call('SET', KEYS[3], existing, 'EX', ARGV[3])
  return {existing, 0}
end
local body = cjson.decode(ARGV[10])
local fields, scores, event = body[1], body[2], body[3]
local nsets = #scores
local created, last_key = tonumber(ARGV[4]), KEYS[7 + nsets]
local link = ARGV[7] ~= '' and last_key and cjson.decode(ARGV[7])
if link then
  -- A repeat contact: the caller's last order of this category, open and within the window
  -- of its creation or last repeat call, takes this call instead of a new order.
  local last = redis.call('HMGET', last_key, 'id', 'at')
  local order = last[1] and base .. last[1]
  local now = order and redis.call('HMGET', order, 'status', 'category', 'contacts', 'updated_at')
  if now and link.open[now[1]] and now[2] == link.category
      and tonumber(last[2]) >= created - link.window then
    local contacts = (tonumber(now[3]) or 1) + 1
    redis.call('HSET', order, 'contacts', tostring(contacts))
    if not now[4] or now[4] < link.updated_at then
      redis.call('HSET', order, 'updated_at', link.updated_at)
    end
    redis.call('RPUSH', order .. ':history', link.entry)
    redis.call('SET', KEYS[1], last[1])
    if created > tonumber(last[2]) then redis.call('HSET', last_key, 'at', ARGV[4]) end
    redis.call('EXPIRE', last_key, link.ttl)
    alias(last[1])
    redis.call('SET', KEYS[3], last[1], 'EX', ARGV[3])
    local entry = link.event
    for _, v in ipairs({'order_id', last[1], 'status', now[1], 'contacts', tostring(contacts)}) do
      entry[#entry + 1] = v
    end
    redis.call('XADD', KEYS[5], 'MAXLEN', '~', ARGV[6], '*', unpack(entry))
    return {last[1], 2}
  end
end
local id = proposed
if id == '' or redis.call('EXISTS', base .. id) == 1 then
  -- id = seq * buckets + bucket: the id tells its bucket. An id taken already (a key
  -- written outside this script) is skipped rather than overwritten.
  local buckets, bucket = tonumber(ARGV[8]), tonumber(ARGV[9])
  repeat
    id = tostring(redis.call('INCR', KEYS[2]) * buckets + bucket)
  until redis.call('EXISTS', base .. id) == 0
  alias(id)
end
redis.call('HSET', base .. id, 'id', id, unpack(fields))
redis.call('RPUSH', base .. id .. ':history', ARGV[5])
redis.call('SET', KEYS[1], id)
redis.call('ZADD', KEYS[4], ARGV[4], id)
for i = 1, nsets do redis.call('ZADD', KEYS[5 + i], scores[i], id) end
if KEYS[6 + nsets] then redis.call('SADD', KEYS[6 + nsets], id) end
if link then
  redis.call('HSET', last_key, 'id', id, 'at', ARGV[4])
  redis.call('EXPIRE', last_key, link.ttl)
end
redis.call('SET', KEYS[3], id, 'EX', ARGV[3])
event[#event + 1] = 'order_id'
event[#event + 1] = id
redis.call('XADD', KEYS[5], 'MAXLEN', '~', ARGV[6], '*', unpack(event))
return {id, 1}
"""

#: What the create script answers: an order was already there, one was created, or the call
#: was linked to the caller's open order as a repeat contact.
FOUND, CREATED, LINKED = 0, 1, 2
