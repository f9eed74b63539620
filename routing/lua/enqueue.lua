-- A call joins the waiting set at its position (or an instance takes over the same call).
-- KEYS: call, waiting, seq, events ; ARGV: fields-json, now, instance, iso-time
-- Returns {'entered' | 'resumed', seq}.
local status = redis.call('HGET', KEYS[1], 'status')
local fields = cjson.decode(ARGV[1])
changed('c:' .. fields['call_id'])
if status == 'waiting' or status == 'offered' then
  -- the same call again: an instance took it over after its first instance died
  redis.call('HSET', KEYS[1], 'instance', ARGV[3])
  return {'resumed', redis.call('HGET', KEYS[1], 'seq')}
end
local seq = redis.call('INCR', KEYS[3])
redis.call('DEL', KEYS[1])
for k, v in pairs(fields) do redis.call('HSET', KEYS[1], k, v) end
redis.call('HSET', KEYS[1], 'seq', seq, 'status', 'waiting', 'instance', ARGV[3])
redis.call('ZADD', KEYS[2], fields['entered_at'], fields['call_id'])
xadd(KEYS[4], 'kind', 'ENTERQUEUE', 'time', ARGV[4], 'call_id', fields['call_id'],
     'queue', fields['queue'], 'request_type', fields['request_type'],
     'urgency', fields['urgency'], 'caller', fields['caller_number'])
return {'entered', seq}
