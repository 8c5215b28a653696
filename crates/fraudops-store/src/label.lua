-- Applies confirmed outcomes to the terminals' risk state, atomically and idempotently: the transaction
-- joins its terminal's set (a no-op if scoring already recorded it), and its id joins or leaves the
-- terminal's fraud set, so a repeated label changes nothing and a reversed one is undone. One call holds
-- the labels of terminals whose keys share a slot (Redis Cluster), or all of a batch (one Redis); the
-- scores the labels are joined with are read apart (their day's hash lives in its own slot).
--
-- Keys, per label: terminal (sorted set of tx ids by time), terminal fraud (the same, fraud only) [and their
-- two v1 keys when draining: merged into v2 and deleted, `drain` of drain_v1.lua].
-- ARGV: [1] number of labels, [2] terminal key TTL s, [3] drain v1 (1/0), then per label: time, tx id,
-- label (1 fraud, 0 not). Returns the number of labels applied.
local n = tonumber(ARGV[1])
local ttl = string.format('%d', tonumber(ARGV[2]) * 1000) -- ms: PEXPIRE, as observe.lua
local drain_v1 = ARGV[3] == '1'
local per = drain_v1 and 4 or 2
for e = 0, n - 1 do
  local a = 4 + 3 * e
  local t, id = ARGV[a], ARGV[a + 1]
  local tk, fk = KEYS[per * e + 1], KEYS[per * e + 2]
  if drain_v1 and redis.call('EXISTS', KEYS[per * e + 3], KEYS[per * e + 4]) > 0 then
    drain(tk, KEYS[per * e + 3], ttl)
    drain(fk, KEYS[per * e + 4], ttl)
  end
  -- Usually scoring recorded it already (and the key has its TTL); set the TTL when the label adds it.
  if redis.call('ZADD', tk, t, id) == 1 then
    redis.call('PEXPIRE', tk, ttl)
  end
  if ARGV[a + 2] == '1' then
    redis.call('ZADD', fk, t, id)
    redis.call('PEXPIRE', fk, ttl)
  else
    redis.call('ZREM', fk, id)
  end
end
return n
