-- Records transactions and returns their feature windows, atomically (Redis runs a script alone).
--
-- Keys, three per event:   customer (sorted set: "<units>:<micro remainder>:<tx id>" scored by time),
--                          terminal (sorted set: tx id scored by time: every transaction seen there),
--                          terminal fraud (sorted set: tx id scored by time: those labelled fraud).
-- ARGV: [1] number of events, [2] seconds per day, [3..5] customer window days, [6] terminal delay days,
--       [7..9] terminal window days, [10] customer history kept s, [11] terminal history kept s (each
--       the longest reach plus a slack for late events),
--       [12] customer key TTL s, [13] terminal key TTL s, then per event: time, units, remainder, tx id.
-- Returns per event 15 integers: customer count ×3, amount units ×3, micro remainders ×3, terminal
-- count ×3, terminal frauds ×3 (windows in the order of ARGV). Sums stay integers below 2^53, so exact.
local n = tonumber(ARGV[1])
local day = tonumber(ARGV[2])
local cw = { tonumber(ARGV[3]) * day, tonumber(ARGV[4]) * day, tonumber(ARGV[5]) * day }
local delay = tonumber(ARGV[6]) * day
local tw = { tonumber(ARGV[7]) * day, tonumber(ARGV[8]) * day, tonumber(ARGV[9]) * day }
local c_keep, t_keep = tonumber(ARGV[10]), tonumber(ARGV[11])
local c_ttl, t_ttl = ARGV[12], ARGV[13]
local longest = math.max(cw[1], cw[2], cw[3])
local out = {}
for e = 0, n - 1 do
  local a = 14 + 4 * e
  local t = tonumber(ARGV[a])
  local id = ARGV[a + 3]
  local ck, tk, fk = KEYS[3 * e + 1], KEYS[3 * e + 2], KEYS[3 * e + 3]
  -- Customer: forget what no window reaches, record this one, then sum (t - w, t] for each window.
  redis.call('ZREMRANGEBYSCORE', ck, '-inf', t - c_keep)
  redis.call('ZADD', ck, t, ARGV[a + 1] .. ':' .. ARGV[a + 2] .. ':' .. id)
  redis.call('EXPIRE', ck, c_ttl)
  local rows = redis.call('ZRANGEBYSCORE', ck, '(' .. string.format('%d', t - longest), t, 'WITHSCORES')
  local cnt, units, rems = { 0, 0, 0 }, { 0, 0, 0 }, { 0, 0, 0 }
  for i = 1, #rows, 2 do
    local u, r = string.match(rows[i], '^(%d+):(%d+):')
    u, r = tonumber(u), tonumber(r)
    local ts = tonumber(rows[i + 1])
    for w = 1, 3 do
      if ts > t - cw[w] then
        cnt[w] = cnt[w] + 1
        units[w] = units[w] + u
        rems[w] = rems[w] + r
      end
    end
  end
  -- Terminal: count (t - delay - w, t - delay] before recording this one (it is never inside).
  redis.call('ZREMRANGEBYSCORE', tk, '-inf', t - t_keep)
  redis.call('ZREMRANGEBYSCORE', fk, '-inf', t - t_keep)
  local hi = string.format('%d', t - delay)
  local nb, fr = {}, {}
  for w = 1, 3 do
    local lo = '(' .. string.format('%d', t - delay - tw[w])
    nb[w] = redis.call('ZCOUNT', tk, lo, hi)
    fr[w] = redis.call('ZCOUNT', fk, lo, hi)
  end
  redis.call('ZADD', tk, t, id)
  redis.call('EXPIRE', tk, t_ttl)
  for w = 1, 3 do out[#out + 1] = cnt[w] end
  for w = 1, 3 do out[#out + 1] = units[w] end
  for w = 1, 3 do out[#out + 1] = rems[w] end
  for w = 1, 3 do out[#out + 1] = nb[w] end
  for w = 1, 3 do out[#out + 1] = fr[w] end
end
return out
