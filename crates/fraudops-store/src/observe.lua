-- Records transactions and returns their feature windows, atomically (Redis runs a script alone).
--
-- Keys, three per event:   customer (sorted set: "<units>:<micro remainder>:<tx id>" scored by time),
--                          terminal (sorted set: tx id scored by time: every transaction seen there),
--                          terminal fraud (sorted set: tx id scored by time: those labelled fraud).
-- ARGV: [1] number of events, [2] seconds per day, [3..5] customer window days, [6] terminal delay days,
--       [7..9] terminal window days, [10] customer history kept s, [11] terminal history kept s (each
--       the longest reach plus a slack for late events),
--       [12] customer key TTL s, [13] terminal key TTL s, then per event: time, units, remainder, tx id,
--       record (1: record it; 0: return its windows as if recorded and write nothing).
-- Returns per event 16 integers: customer count ×3, amount units ×3, micro remainders ×3, terminal
-- count ×3, terminal frauds ×3 (windows in the order of ARGV), then what was done: 0 recorded, 1 read
-- only (asked), 2 read only (older than the card's reach). Sums stay integers below 2^53, so exact.
--
-- Time is the caller's, so it is never trusted to delete anything: a key is pruned below the older of the
-- event's time and the newest time the key already holds (one event far in the future prunes nothing), and
-- an event whose customer windows reach below what may already have been pruned (the card's newest time
-- minus what is kept: only recorded transactions move it) is not recorded: its windows are no longer
-- complete, and recording it would change no later window. Terminal sets also hold labelled transactions
-- (`label.lua`), which may be newer than any scored one, so they bound pruning but not recording.
-- The caller refuses times ahead of its clock.
local n = tonumber(ARGV[1])
local day = tonumber(ARGV[2])
local cw = { tonumber(ARGV[3]) * day, tonumber(ARGV[4]) * day, tonumber(ARGV[5]) * day }
local delay = tonumber(ARGV[6]) * day
local tw = { tonumber(ARGV[7]) * day, tonumber(ARGV[8]) * day, tonumber(ARGV[9]) * day }
local c_keep, t_keep = tonumber(ARGV[10]), tonumber(ARGV[11])
local c_ttl, t_ttl = ARGV[12], ARGV[13]
local longest = math.max(cw[1], cw[2], cw[3])
local out = {}
-- The newest time a sorted set holds, or nil when it is empty.
local function newest(key)
  local top = redis.call('ZRANGE', key, 0, 0, 'REV', 'WITHSCORES')
  if #top == 0 then return nil end
  return tonumber(top[2])
end
for e = 0, n - 1 do
  local a = 14 + 5 * e
  local t = tonumber(ARGV[a])
  local id = ARGV[a + 3]
  local record = ARGV[a + 4] == '1'
  local member = ARGV[a + 1] .. ':' .. ARGV[a + 2] .. ':' .. id
  local ck, tk, fk = KEYS[3 * e + 1], KEYS[3 * e + 2], KEYS[3 * e + 3]
  local c_new, t_new = newest(ck), newest(tk)
  -- Nothing above the card's newest time - keep was ever pruned; windows that reach below it are too old.
  local status = record and 0 or 1
  if c_new and t - longest < c_new - c_keep then
    status = 2
  end
  -- Customer: forget what no window reaches, record this one, then sum (t - w, t] for each window.
  if status == 0 then
    if c_new then redis.call('ZREMRANGEBYSCORE', ck, '-inf', math.min(t, c_new) - c_keep) end
    redis.call('ZADD', ck, t, member)
    redis.call('EXPIRE', ck, c_ttl)
  end
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
  -- Read only: the windows include this transaction, as a recorded one's do (unless it is recorded).
  if status ~= 0 and tonumber(redis.call('ZSCORE', ck, member)) ~= t then
    local u, r = tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
    for w = 1, 3 do
      cnt[w] = cnt[w] + 1
      units[w] = units[w] + u
      rems[w] = rems[w] + r
    end
  end
  -- Terminal: count (t - delay - w, t - delay] before recording this one (it is never inside).
  if status == 0 and t_new then
    local cut = math.min(t, t_new) - t_keep
    redis.call('ZREMRANGEBYSCORE', tk, '-inf', cut)
    redis.call('ZREMRANGEBYSCORE', fk, '-inf', cut)
  end
  local hi = string.format('%d', t - delay)
  local nb, fr = {}, {}
  for w = 1, 3 do
    local lo = '(' .. string.format('%d', t - delay - tw[w])
    nb[w] = redis.call('ZCOUNT', tk, lo, hi)
    fr[w] = redis.call('ZCOUNT', fk, lo, hi)
  end
  if status == 0 then
    redis.call('ZADD', tk, t, id)
    redis.call('EXPIRE', tk, t_ttl)
  end
  for w = 1, 3 do out[#out + 1] = cnt[w] end
  for w = 1, 3 do out[#out + 1] = units[w] end
  for w = 1, 3 do out[#out + 1] = rems[w] end
  for w = 1, 3 do out[#out + 1] = nb[w] end
  for w = 1, 3 do out[#out + 1] = fr[w] end
  out[#out + 1] = status
end
return out
