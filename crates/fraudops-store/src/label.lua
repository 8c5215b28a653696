-- Applies confirmed outcomes to the terminals' risk state, atomically and idempotently: the transaction
-- joins its terminal's set (a no-op if scoring already recorded it), and its id joins or leaves the
-- terminal's fraud set, so a repeated label changes nothing and a reversed one is undone. Returns, per
-- label, the score a scorer recorded for the transaction (`record_scores`), or false if there is none, so
-- the label consumer joins labels with predictions in the same round trip (online evaluation).
--
-- Keys, three per label: terminal (sorted set of tx ids by time), terminal fraud (the same, fraud only),
-- the scores of the transaction's day (hash tx id -> "probability|is_fraud|model version").
-- ARGV: [1] number of labels, [2] terminal key TTL s, then per label: time, tx id, label (1 fraud, 0 not).
local n = tonumber(ARGV[1])
local ttl = ARGV[2]
local scores = {}
for e = 0, n - 1 do
  local a = 3 + 3 * e
  local t, id = ARGV[a], ARGV[a + 1]
  local tk, fk = KEYS[3 * e + 1], KEYS[3 * e + 2]
  redis.call('ZADD', tk, t, id)
  redis.call('EXPIRE', tk, ttl)
  if ARGV[a + 2] == '1' then
    redis.call('ZADD', fk, t, id)
    redis.call('EXPIRE', fk, ttl)
  else
    redis.call('ZREM', fk, id)
  end
  scores[e + 1] = redis.call('HGET', KEYS[3 * e + 3], id)
end
return scores
