-- The waiting caller leaves a number and hangs up; the call keeps its place in line.
-- KEYS: call, events ; ARGV: call_id, number, now, iso
-- Returns 'requested' or 'not-waiting' (an agent was offered it in the meantime).
if redis.call('HGET', KEYS[1], 'status') ~= 'waiting' then return 'not-waiting' end
changed('c:' .. ARGV[1])
-- no instance owns it any more: whichever dispatcher wins an agent for it places it
redis.call('HSET', KEYS[1], 'callback', '1', 'callback_number', ARGV[2],
           'callback_attempts', 0, 'callback_at', ARGV[3], 'callback_next_at', 0,
           'instance', '')
xadd(KEYS[2], 'kind', 'CALLBACKREQUEST', 'time', ARGV[4], 'call_id', ARGV[1],
     'queue', redis.call('HGET', KEYS[1], 'queue'), 'number', ARGV[2])
return 'requested'
