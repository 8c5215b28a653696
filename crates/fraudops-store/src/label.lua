-- Applies confirmed outcomes to the terminals' risk state, atomically and idempotently: the transaction
-- joins its terminal's set (a no-op if scoring already recorded it), and its id joins or leaves the
-- terminal's fraud set, so a repeated label changes nothing and a reversed one is undone.
--
-- Keys, two per label: terminal (sorted set of tx ids by time), terminal fraud (the same, fraud only).
-- ARGV: [1] number of labels, [2] terminal key TTL s, then per label: time, tx id, label (1 fraud, 0 not).
local n = tonumber(ARGV[1])
local ttl = ARGV[2]
for e = 0, n - 1 do
  local a = 3 + 3 * e
  local t, id = ARGV[a], ARGV[a + 1]
  local tk, fk = KEYS[2 * e + 1], KEYS[2 * e + 2]
  redis.call('ZADD', tk, t, id)
  redis.call('EXPIRE', tk, ttl)
  if ARGV[a + 2] == '1' then
    redis.call('ZADD', fk, t, id)
    redis.call('EXPIRE', fk, ttl)
  else
    redis.call('ZREM', fk, id)
  end
end
return n
